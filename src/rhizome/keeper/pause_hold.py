"""When the keeper lets its guard hold PostgreSQL unfenced while the cluster is paused (pure).

A held PostgreSQL runs on when its keeper dies (guard.py, `hold`), so after a
resume the sentinel must not fail over from it until its keeper is back
(sentinel/decision/pause_holds.py). Two rules keep both sides in step:

- A master's keeper holds only once the sentinel recorded it in
  `state.paused_holds` under its own instance id. A standby accepts no
  writes and nothing promotes it while paused: holding it is harmless.
- The switch is ordered: `holding: true` is published and stored before the
  guard enters `hold`; on leaving, the guard is back in `normal` before
  `holding: false` is published (the report follows the guard's mode).
- A keeper that departs once `holding: true` is stored departs holding, even
  when its guard would have entered `hold` only on its next pass: the store
  already tells the sentinel and the operator that PostgreSQL is held.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from rhizome.keeper.guard import Mode
from rhizome.keeper.inputs import Desired
from rhizome.store.view import ClusterView


def hold_allowed(
    *, paused: bool, master: bool, own_instance: str | None, held: Mapping[str, str], name: str
) -> bool:
    """Whether this keeper may let its guard hold PostgreSQL without a fence."""
    if not paused:
        return False
    if not master:
        return True
    return own_instance is not None and held.get(name) == own_instance


@dataclass
class HoldSwitch:
    """Orders the guard's entry into `hold` after the published `holding: true`."""

    announced: bool = False
    """holding: true is to be published (the guard may not hold yet)."""

    def mode(self, allowed: bool, holding_stored: bool) -> Mode:
        """The guard's mode for this pass, given whether `holding: true` is in the store."""
        self.announced = allowed
        return "hold" if allowed and holding_stored else "normal"

    def holding(self, guard_mode: Mode) -> bool:
        """What to publish as `holding`."""
        return self.announced or guard_mode == "hold"


def guard_mode(
    switch: HoldSwitch, name: str, wish: Desired, view: ClusterView, own_instance: str | None
) -> Mode:
    """The guard's mode for this pass of keeper `name`."""
    allowed = hold_allowed(
        paused=wish.spec.paused, master=wish.role == "master", name=name,
        own_instance=own_instance,
        held=wish.state.paused_holds if wish.state is not None else {},
    )  # fmt: skip
    return switch.mode(allowed, holding_stored(view, name))


def departs_holding(switch: HoldSwitch, mode: Mode, view: ClusterView, name: str) -> bool:
    """Whether departing keeper `name`, its guard in `mode`, leaves its PostgreSQL held
    (departure.py, `hold`)."""
    return mode == "hold" or (switch.announced and holding_stored(view, name))


def holding_stored(view: ClusterView, name: str) -> bool:
    """Whether keeper `name`'s document in the store says `holding: true`."""
    own = view.keepers.get(name)
    return own is not None and own.document.holding
