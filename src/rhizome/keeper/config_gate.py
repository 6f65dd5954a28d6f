"""A configuration PostgreSQL refuses is never written: the keeper's gate on pg_parameters.

Before the keeper renders postgresql.conf from new pg_parameters, the
installed PostgreSQL judges them (`postgres -C` over a scratch file, see
`rhizome.pgconfig.scratch`). A value it refuses is not written: the
parameter keeps its last good value (the parameters last written, kept in
<state_dir>/accepted-parameters.json), or is left out when it has none, and
every other change is applied — as PostgreSQL itself does at a reload.
The refusal is reported as the keeper's last_error until the spec changes.
What the scratch check cannot see, the keeper's observation can: the errors
of pg_file_settings (the file as PostgreSQL reads it now) refuse the
parameters they name in the same way, so the next pass writes the file again
without them.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import pwd
from collections.abc import Iterable, Mapping

from rhizome.keeper.config import KeeperConfig
from rhizome.keeper.inputs import Desired
from rhizome.pgconfig.scratch import UNATTRIBUTED, CheckUnavailable, postgres_verdict
from rhizome.spec.postgres import ParameterValue

log = logging.getLogger(__name__)

ACCEPTED_FILE = "accepted-parameters.json"
CHECK_ROUNDS = 3
"""PostgreSQL stops at unknown names before it judges values: check again without them."""

Parameters = dict[str, ParameterValue]


def effective_parameters(
    wanted: Mapping[str, ParameterValue],
    refused: Mapping[str, str],
    last_good: Mapping[str, ParameterValue] | None,
) -> Parameters:
    """The parameters to write: the wanted ones, each refused one at its last good value."""
    if UNATTRIBUTED in refused:
        return dict(last_good or {})
    result = {name: value for name, value in wanted.items() if name not in refused}
    for name in refused:
        if last_good is not None and name in last_good:
            result[name] = last_good[name]
    return dict(sorted(result.items()))


def refusal_text(
    refused: Mapping[str, str],
    wanted: Mapping[str, ParameterValue],
    last_good: Mapping[str, ParameterValue] | None,
) -> str:
    """The keeper's last_error for refused parameters, each with what is kept instead."""
    parts = []
    for name, message in sorted(refused.items()):
        if name == UNATTRIBUTED:
            parts.append(f"{message} (the last good pg_parameters are kept)")
            continue
        kept = last_good.get(name) if last_good is not None else None
        instead = f"kept at {kept!r}" if kept is not None else "left out"
        parts.append(f"pg_parameters.{name} = {wanted.get(name)!r}: {message} ({instead})")
    return "PostgreSQL refuses the configuration: " + "; ".join(parts)


class ConfigGate:
    """The keeper's memory of what PostgreSQL refused in the current pg_parameters."""

    def __init__(self, keeper: KeeperConfig) -> None:
        self.keeper = keeper
        self.checked: Parameters | None = None
        self.refused: dict[str, str] = {}
        self.refusal: str | None = None
        self.unexplained: str | None = None
        """pg_file_settings errors about parameters that are not the spec's."""

    @property
    def problem(self) -> str | None:
        """What to report as last_error (None: PostgreSQL accepts the configuration)."""
        problems = [text for text in (self.refusal, self.unexplained) if text]
        return "; ".join(problems) if problems else None

    def apply(self, wish: Desired) -> Desired:
        """The wish with pg_parameters PostgreSQL accepts (checked once per new parameters)."""
        wanted = dict(wish.spec.pg_parameters)
        if wanted != self.checked:
            self.checked = wanted
            self.refused = self._verdict(wanted)
        if not self.refused:
            self.refusal = None
            return wish
        last_good = read_accepted(self.keeper)
        self.refusal = refusal_text(self.refused, wanted, last_good)
        effective = effective_parameters(wanted, self.refused, last_good)
        spec = wish.spec.model_copy(update={"pg_parameters": effective})
        return dataclasses.replace(wish, spec=spec)

    def observed(self, file_errors: Iterable[tuple[str, str]]) -> None:
        """pg_file_settings errors of the file on disk: refuse the wanted values they name."""
        others = []
        for name, error in file_errors:
            if self.checked is not None and name in self.checked:
                if name not in self.refused:
                    log.error("PostgreSQL refuses pg_parameters.%s in its file: %s", name, error)
                    self.refused[name] = error
            else:
                others.append(f"{name or 'the file'}: {error}")
        self.unexplained = None
        if others:
            self.unexplained = "PostgreSQL finds errors in its configuration: " + "; ".join(others)

    def _verdict(self, wanted: Parameters) -> dict[str, str]:
        refused: dict[str, str] = {}
        rest = dict(wanted)
        for _round in range(CHECK_ROUNDS):
            if not rest:
                break
            try:
                found = postgres_verdict(self.keeper.program("postgres"), rest, self._os_user())
            except CheckUnavailable as error:
                log.warning("cannot check pg_parameters before writing them: %s", error)
                break
            if not found:
                break
            refused.update(found)
            rest = {name: value for name, value in rest.items() if name not in found}
        if refused:
            log.error("%s", refusal_text(refused, wanted, read_accepted(self.keeper)))
        return refused

    def _os_user(self) -> str:
        try:
            return pwd.getpwuid(self.keeper.data_dir.stat().st_uid).pw_name
        except (OSError, KeyError):
            return pwd.getpwuid(os.geteuid()).pw_name


def read_accepted(keeper: KeeperConfig) -> Parameters | None:
    """The pg_parameters last written to postgresql.conf; None when not known."""
    try:
        data = json.loads((keeper.state_dir / ACCEPTED_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def record_accepted(keeper: KeeperConfig, parameters: Mapping[str, ParameterValue]) -> None:
    """Remember the pg_parameters just written (the last good ones)."""
    path = keeper.state_dir / ACCEPTED_FILE
    temporary = path.with_name(ACCEPTED_FILE + ".new")
    temporary.write_text(json.dumps(dict(parameters), sort_keys=True), encoding="utf-8")
    os.replace(temporary, path)
