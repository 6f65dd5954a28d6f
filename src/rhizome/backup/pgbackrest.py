"""The one adapter that runs pgBackRest (archive-push, backup, info, check, stanza-create).

Options come from the node's configuration file and a few command-line
options that are never secret (config path, stanza, pg1-path, type): a
repository's cipher passphrase or S3 keys stay in the file or in pgBackRest's
own environment variables. Errors are reported trimmed, with anything that
looks like a credential masked, because they end up in the store and in logs.
"""

from __future__ import annotations

import os
import re
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

PGBACKREST = "pgbackrest"
"""The program, found on PostgreSQL's PATH (Debian installs /usr/bin/pgbackrest)."""
ERROR_LIMIT = 600
"""Characters of pgBackRest's error text kept in a report."""
SECRET_PATTERN = re.compile(
    r"(?i)((?:pass(?:word|phrase)?|secret|key|token)[a-z0-9_-]*\s*[=:]\s*)(\S+)"
)
DEFAULT_TIMEOUT = 60.0


@dataclass(frozen=True)
class Outcome:
    """What one pgBackRest run did."""

    ok: bool
    output: str
    error: str | None
    started_at: float
    finished_at: float

    @property
    def seconds(self) -> float:
        return self.finished_at - self.started_at


def masked(text: str) -> str:
    """`text` with the values of anything named like a credential replaced by ***."""
    return SECRET_PATTERN.sub(lambda match: match.group(1) + "***", text)


def trimmed_error(stderr: str, stdout: str, returncode: int) -> str:
    """pgBackRest's ERROR lines (else its last output), masked and cut to ERROR_LIMIT."""
    lines = [line.strip() for line in (stderr + "\n" + stdout).splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith(("ERROR", "HINT"))]
    text = " ".join(errors or lines[-5:]) or f"pgbackrest exited with status {returncode}"
    text = masked(text)
    return text if len(text) <= ERROR_LIMIT else text[: ERROR_LIMIT - 3] + "..."


def config_options(config: Path, stanza: str) -> list[str]:
    """The options naming this node's configuration file and the stanza (never a secret)."""
    return [f"--config={config}", f"--stanza={stanza}"]


def as_user(argv: list[str], run_as: str | None) -> list[str]:
    """`argv` run as `run_as` (setpriv) when we are root; unchanged otherwise."""
    if run_as is None or os.geteuid() != 0:
        return argv
    return ["setpriv", f"--reuid={run_as}", f"--regid={run_as}", "--init-groups", "--", *argv]


def command_line(
    options: Sequence[str], command: str, arguments: Sequence[str] = (), run_as: str | None = None
) -> list[str]:
    """The argv (options, command, its arguments): as `run_as` (setpriv) when root."""
    return as_user([PGBACKREST, *options, command, *arguments], run_as)


def run(
    options: Sequence[str],
    command: str,
    arguments: Sequence[str] = (),
    *,
    run_as: str | None = None,
    timeout: float | None = DEFAULT_TIMEOUT,
    passfile: Path | None = None,
) -> Outcome:
    """Run one pgBackRest command; never raises for its failure (see Outcome.error).

    `passfile`: a libpq password file for pgBackRest's connections to PostgreSQL
    (PGPASSFILE in its environment: a password is never on the command line).
    """
    argv = command_line(options, command, arguments, run_as)
    environment = dict(os.environ)
    if passfile is not None:
        environment["PGPASSFILE"] = str(passfile)
    started = time.time()
    try:
        completed = subprocess.run(
            argv,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            cwd="/",
            env=environment,
        )
    except (OSError, subprocess.TimeoutExpired) as error:
        return Outcome(False, "", masked(str(error))[:ERROR_LIMIT], started, time.time())
    finished = time.time()
    if completed.returncode != 0:
        text = trimmed_error(completed.stderr, completed.stdout, completed.returncode)
        return Outcome(False, completed.stdout, text, started, finished)
    return Outcome(True, completed.stdout, None, started, finished)


def archive_push(options: Sequence[str], path: Path, timeout: float = DEFAULT_TIMEOUT) -> Outcome:
    """Push one WAL file (a segment or a history file) to the archive."""
    return run(options, "archive-push", [str(path)], timeout=timeout)
