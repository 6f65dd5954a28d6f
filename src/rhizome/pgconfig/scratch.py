"""PostgreSQL's own verdict on parameter values: `postgres -C` over a scratch file.

The candidate values go into postgresql.conf in a throwaway directory, and
the installed `postgres` reads it as it would at startup (`-C config_file`
prints one setting and exits; no server starts, no data directory is needed,
no credentials). Any value it refuses makes it exit non-zero, and its log
lines name each parameter, the value and the accepted form (its HINT lists
the units or enum values). PostgreSQL refuses to run as root: as root the
check runs as the owner given (the PostgreSQL OS user) through setpriv.
"""

from __future__ import annotations

import os
import pwd
import re
import shutil
import subprocess
import tempfile
from collections.abc import Mapping
from pathlib import Path

from rhizome.keeper.conffiles import quote_value
from rhizome.spec.postgres import ParameterValue

CHECK_TIMEOUT = 20.0
DEFAULT_OS_USER = "postgres"
UNATTRIBUTED = ""
"""The key of an error that names no parameter (e.g. a syntax error)."""

LOG_LINE = re.compile(r"\b(?P<level>LOG|FATAL|ERROR|WARNING|HINT|DETAIL):\s+(?P<message>.*)$")
PARAMETER_NAME = re.compile(r'parameter "(?P<name>[^"]+)"')
IGNORED_MESSAGES = ("skipping missing configuration file", "contains errors")


class CheckUnavailable(RuntimeError):
    """PostgreSQL could not be asked (not installed, no user to run it as, ...)."""


def parse_check_output(text: str) -> dict[str, str]:
    """Parameter name → PostgreSQL's messages about it (HINTs appended) from its log lines."""
    verdict: dict[str, str] = {}
    last: str | None = None
    for line in text.splitlines():
        match = LOG_LINE.search(line)
        if match is None:
            continue
        level, message = match.group("level"), match.group("message").strip()
        if level in ("HINT", "DETAIL"):
            if last is not None:
                verdict[last] = f"{verdict[last]} ({message})"
            continue
        if any(ignored in message for ignored in IGNORED_MESSAGES):
            last = None
            continue
        named = PARAMETER_NAME.search(message)
        last = named.group("name") if named else UNATTRIBUTED
        previous = verdict.get(last)
        verdict[last] = f"{previous}; {message}" if previous else message
    return verdict


def scratch_file_text(parameters: Mapping[str, ParameterValue]) -> str:
    """The candidate values, written as the keeper writes them."""
    return "".join(f"{name} = {quote_value(value)}\n" for name, value in sorted(parameters.items()))


def postgres_verdict(
    postgres: str, parameters: Mapping[str, ParameterValue], os_user: str = DEFAULT_OS_USER
) -> dict[str, str]:
    """What PostgreSQL refuses in `parameters` (empty: it accepts them all)."""
    wrapper = _run_as(os_user)
    scratch = Path(tempfile.mkdtemp(prefix="rhizome-parameter-check-"))
    try:
        (scratch / "postgresql.conf").write_text(scratch_file_text(parameters), encoding="utf-8")
        (scratch / "postgresql.auto.conf").write_text("", encoding="utf-8")
        if wrapper:
            _give_to(scratch, os_user)
        argv = [*wrapper, postgres, "-C", "config_file", "-D", str(scratch)]
        try:
            completed = subprocess.run(
                argv, capture_output=True, text=True, timeout=CHECK_TIMEOUT, check=False
            )
        except (OSError, subprocess.TimeoutExpired) as error:
            raise CheckUnavailable(f"cannot run {postgres} -C: {error}") from error
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    if completed.returncode == 0:
        return {}
    verdict = parse_check_output(completed.stderr)
    if not verdict:
        reason = completed.stderr.strip() or f"exit code {completed.returncode}"
        raise CheckUnavailable(f"{postgres} -C failed without naming a parameter: {reason}")
    return verdict


def _run_as(os_user: str) -> list[str]:
    """The setpriv prefix that drops root to `os_user`; nothing when not root."""
    if os.geteuid() != 0:
        return []
    setpriv = shutil.which("setpriv")
    try:
        entry = pwd.getpwnam(os_user)
    except KeyError as error:
        raise CheckUnavailable(
            f"PostgreSQL does not run as root and there is no user {os_user}"
        ) from error
    if setpriv is None:
        raise CheckUnavailable("PostgreSQL does not run as root and setpriv is not installed")
    return [setpriv, f"--reuid={entry.pw_uid}", f"--regid={entry.pw_gid}", "--clear-groups", "--"]


def _give_to(directory: Path, os_user: str) -> None:
    entry = pwd.getpwnam(os_user)
    for path in (directory, *directory.iterdir()):
        os.chown(path, entry.pw_uid, entry.pw_gid)
