"""Moving a cluster's documents from one etcd API to the other (v2 to v3, or back).

The two APIs of etcd 3.4/3.5 keep separate key spaces. A cluster moves while
paused (no topology change can happen): `copy_plan` lists the documents the
operator's commands wrote (spec, state, pending commands, the last backup's
record) to create on the target; the agents' own documents (keepers,
sentinels, proxies, the leader key) are not copied: each agent publishes
them on its own lease once it runs on the target API. `finish_problems`
says what still prevents deleting the source: an agent still there, or a
keeper of the state not yet on the target. Pure functions on raw keys.
"""

from __future__ import annotations

from collections.abc import Iterable

from rhizome.etcd import KeyValue
from rhizome.store.keys import ClusterKeys, KeyKind
from rhizome.store.view import build_view

COPIED_KINDS = frozenset({KeyKind.SPEC, KeyKind.STATE, KeyKind.COMMAND, KeyKind.BACKUPS})
"""What the move copies; every other kind is an agent's, on its lease."""
AGENT_KINDS = frozenset({KeyKind.KEEPER, KeyKind.SENTINEL, KeyKind.PROXY, KeyKind.LEADER})


class MoveRefused(ValueError):
    """The move cannot go on; the message names what is in the way and the fix."""


def copy_plan(
    keys: ClusterKeys, source: Iterable[KeyValue], target: Iterable[KeyValue]
) -> list[tuple[str, bytes]]:
    """The (key, value) pairs to create on the target; raises MoveRefused when the source
    is not paused (or a keeper does not hold its PostgreSQL under the pause yet: the
    agents' restarts on the target API must not fence it), holds a corrupt document,
    or the target holds other documents."""
    source_items = list(source)
    view = build_view(keys, 0, source_items)
    if view.problems:
        listed = "; ".join(str(problem) for problem in view.problems)
        raise MoveRefused(f"fix or delete the corrupt documents first ({listed})")
    if view.spec is None:
        raise MoveRefused(f"cluster {keys.cluster} has no spec in the source API: nothing to move")
    if not view.spec.document.paused:
        raise MoveRefused(
            f"pause cluster {keys.cluster} first (`rhizomectl pause`): it moves paused"
        )
    not_holding = sorted(name for name, kept in view.keepers.items() if not kept.document.holding)
    if not_holding:
        raise MoveRefused(
            f"the pause is not in force yet on keepers {', '.join(not_holding)} (they do not"
            " report holding: a restart now would fence their PostgreSQL); run this again in a"
            " few seconds"
        )
    existing = {item.key: item.value for item in target}
    plan = []
    for item in source_items:
        parsed = keys.parse(item.key)
        if parsed is None or parsed[0] not in COPIED_KINDS:
            continue
        if item.key not in existing:
            plan.append((item.key, item.value))
        elif existing[item.key] != item.value:
            raise MoveRefused(
                f"{item.key} already holds another document in the target API: another"
                f" cluster {keys.cluster} lives there; delete its keys first (with etcdctl) if"
                " it is a leftover, or keep this cluster where it is"
            )
    return plan


def finish_problems(
    keys: ClusterKeys, source: Iterable[KeyValue], target: Iterable[KeyValue]
) -> list[str]:
    """Why the source cannot be deleted yet (empty: it can)."""
    problems = []
    still = sorted(
        f"{parsed[0].value}/{parsed[1]}" if parsed[1] else parsed[0].value
        for parsed in (keys.parse(item.key) for item in source)
        if parsed is not None and parsed[0] in AGENT_KINDS
    )
    if still:
        problems.append(
            "agents still publish in the source API (" + ", ".join(still) + "): restart them"
            " with the target API in their configuration ([etcd] api)"
        )
    view = build_view(keys, 0, list(target))
    if view.spec is None or view.state is None:
        problems.append("the target API has no spec or state yet: run the copy first")
        return problems
    if not view.spec.document.paused:
        problems.append("the target's spec is not paused: keep the cluster paused until finished")
    missing = sorted(set(view.state.document.assignments) - set(view.keepers))
    if missing:
        problems.append(f"keepers not yet running on the target API: {', '.join(missing)}")
    return problems
