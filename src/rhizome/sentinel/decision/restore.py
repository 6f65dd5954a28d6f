"""A restore from a backup takes the cluster over (command `restore`, backup/restore.py).

`rhizomectl backup restore` stops nothing itself: the operator (or
playbooks/restore.yml) stops every keeper, the command restores one node's
data directory to the chosen target, recovers and promotes it on a new
timeline, and only then asks the leader sentinel to make that keeper the
master with a `restore` command. Whatever the state said before (an
operation in progress, another master), the restored data is what the
operator chose, so the command replaces the topology:

- refused while any keeper runs (its document is live): a keeper still
  running could hold a writable PostgreSQL of the old data;
- otherwise the state names the restored keeper master, assigns nobody else
  (membership.py makes the others its standbys once it runs: they rewind or
  clone, their old timeline having diverged), routes proxies nowhere until it
  accepts writes (decide.repair_routing), and forgets the old master's
  synchronous set, pause holds and position. Its master timeline is the
  restored one, so that no keeper still holding the old data (on another
  timeline) can be promoted if the restored master is slow to start. The
  cluster stays initialised, so a keeper without data never runs initdb.
"""

from __future__ import annotations

from rhizome.sentinel.decision.commands import pending_commands
from rhizome.sentinel.decision.model import Progress
from rhizome.sentinel.decision.promotion import MASTER
from rhizome.sentinel.decision.results import record_result, refuse_command
from rhizome.store.documents import Command
from rhizome.store.state import HISTORY_LIMIT, RoleChange, SynchronousStandbys


def take_restore_command(progress: Progress) -> bool:
    """Carry out (or refuse) the oldest pending restore command; False without one."""
    for stored in pending_commands(progress):
        if stored.document.kind == "restore":
            restore(progress, stored.document)
            return True
    return False


def restore(progress: Progress, command: Command) -> None:
    running = sorted(progress.observation.keepers)
    if running:
        refuse_command(
            progress, command,
            f"keepers {', '.join(running)} still run: stop every keeper of the cluster before"
            " the restored one takes over, then run `rhizomectl backup restore` again",
        )  # fmt: skip
        return
    target = command.target
    assert target is not None  # Command's validation
    state = progress.state
    reason = f"restored from a backup on {target} ({command.requested_by})"
    record_result(
        progress, name=command.name, kind="restore", outcome="done", reason=reason,
        requested_at=command.requested_at, old_master=state.master, new_master=target,
    )  # fmt: skip
    change = RoleChange(
        at=progress.now, generation=progress.next_generation, kind="restore",
        old_master=state.master, new_master=target, reason=reason,
    )  # fmt: skip
    progress.change(
        master=target,
        assignments={target: MASTER},
        operation=None,
        proxy_target=state.proxy_target.retargeted(None),
        synchronous_standbys=SynchronousStandbys(),
        master_timeline=command.restored_timeline,
        master_flush_lsn=None,
        master_unhealthy_since=None,
        no_promotion_reason=None,
        paused_holds={},
        history=(*state.history, change)[-HISTORY_LIMIT:],
    )
    progress.note(f"restore: {target} becomes the master with its restored data")
