"""The decision's input and output, and the accumulator its steps share.

`decide()` is pure: everything it knows arrives in a `ClusterObservation`,
everything it decides leaves in a `Decision`. Inside one call, the steps
build the next state in a `Progress`, a scratch pad local to that call.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from rhizome.spec import ClusterSpec, KeeperSettings, TimingSettings
from rhizome.store.documents import Command, KeeperInfo, ProxyInfo
from rhizome.store.state import ClusterState
from rhizome.store.view import Stored


@dataclass(frozen=True)
class ClusterObservation:
    """Everything the leader sentinel knows when it decides."""

    spec: ClusterSpec
    state: ClusterState | None
    """None before the first state is written."""
    keepers: Mapping[str, KeeperInfo]
    """Live keepers only (documents on unexpired leases), by name."""
    proxies: Mapping[str, ProxyInfo]
    """Live proxies only, by id."""
    commands: Mapping[str, Stored[Command]]
    """Pending operator commands, by name."""
    now: float
    """Unix time on the leader's clock (it never steps during one leadership)."""
    rearm_timers: bool = False
    """The first decisions of a new leadership: the timers in `state` were
    measured on another host's clock, so each restarts at `now` (a change of
    leader delays a timer by at most its own length, never fires it early)."""
    leadership_started_at: float = -math.inf
    """`now` when this leadership began, or when this sentinel last regained etcd."""


@dataclass(frozen=True)
class Decision:
    """What the leader sentinel must write."""

    state: ClusterState
    """The next state: the input state itself (same object) when nothing changes."""
    finished_commands: tuple[tuple[str, int], ...]
    """(command name, mod_revision) of the commands to delete from the store."""
    notes: tuple[str, ...]
    """Human-readable lines saying what was decided and why (logged by the sentinel)."""
    recheck_at: float = math.inf
    """When (on the observation's clock) a timer of this decision runs out: deciding
    again then may change something even if the store does not (inf: no timer runs)."""


class Progress:
    """The decision being built: working state, notes and finished commands."""

    def __init__(self, observation: ClusterObservation, state: ClusterState) -> None:
        self.observation = observation
        self.state = state
        self.next_generation = state.generation + 1
        """The generation of the decided state when the topology changes."""
        self.notes: list[str] = []
        self.finished: dict[str, int] = {}
        self.recheck_at = math.inf

    @property
    def spec(self) -> ClusterSpec:
        return self.observation.spec

    @property
    def timing(self) -> TimingSettings:
        return self.observation.spec.timing

    @property
    def now(self) -> float:
        return self.observation.now

    def waited(self, since: float, limit: float) -> bool:
        """Whether `limit` seconds passed since `since`; if not, decide again when they have."""
        if self.now - since >= limit:
            return True
        self.recheck_at = min(self.recheck_at, since + limit)
        return False

    def keeper(self, name: str | None) -> KeeperInfo | None:
        """The live document of keeper `name`, None when its lease is gone."""
        return None if name is None else self.observation.keepers.get(name)

    def settings(self, name: str) -> KeeperSettings:
        return self.observation.spec.keeper_settings(name)

    def removal_requested(self, name: str) -> bool:
        """The operator asked to remove the keeper (spec keepers.<name>.removed)."""
        return self.settings(name).removed

    def change(self, **changes: Any) -> None:
        """Replace the working state by a validated copy with `changes`."""
        self.state = self.state.with_changes(**changes)

    def note(self, text: str) -> None:
        if text not in self.notes:
            self.notes.append(text)

    def finish_command(self, name: str) -> None:
        """Ask the sentinel to delete command `name` (if it is still stored)."""
        stored = self.observation.commands.get(name)
        if stored is not None:
            self.finished[name] = stored.mod_revision
