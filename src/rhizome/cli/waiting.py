"""Following a submitted command until the leader sentinel records its result.

A watch on the cluster (StoreFollower) wakes rhizomectl on every change; it
prints each phase of the operation the command started, and returns the
CommandResult once `state.command_results` names the command.
"""

from __future__ import annotations

import time

from rhizome.cli.context import Context
from rhizome.cli.errors import EXIT_OK, OperationFailed, StoreUnreachable
from rhizome.cli.formatting import format_duration
from rhizome.store.documents import Command, CommandResult
from rhizome.store.follower import StoreFollower
from rhizome.store.view import ClusterView

RESULT_MARGIN = 5.0
"""Seconds waited beyond the command's timeout, for the sentinel to record abandoning it."""
WAKE_INTERVAL = 0.5


def find_result(view: ClusterView, command: Command) -> CommandResult | None:
    """The command's result (an older command of the same name does not count)."""
    if view.state is None:
        return None
    for result in view.state.document.command_results:
        if result.command == command.name and result.requested_at in (None, command.requested_at):
            return result
    return None


def phase_of(view: ClusterView, command_name: str) -> str | None:
    """The phase of the operation started by the command, if it runs now."""
    operation = view.state.document.operation if view.state else None
    if operation is None or operation.command != command_name:
        return None
    target = f" (to {operation.target})" if operation.target else ""
    return f"{operation.kind}{target}: phase {operation.phase}"


def wait_for_result(context: Context, command: Command, timeout: float) -> CommandResult | None:
    """The command's result, or None when none arrived within timeout + RESULT_MARGIN."""
    follower = StoreFollower(context.store).start()
    deadline = time.monotonic() + timeout + RESULT_MARGIN
    revision = 0
    last_phase: str | None = None
    try:
        while (remaining := deadline - time.monotonic()) > 0:
            revision = follower.wait_for_change(revision, min(remaining, WAKE_INTERVAL))
            if not follower.synchronized:
                continue
            view = follower.view()
            result = find_result(view, command)
            if result is not None:
                return result
            phase = phase_of(view, command.name)
            if phase is not None and phase != last_phase:
                context.say(phase)
                last_phase = phase
        if not follower.connected:
            raise StoreUnreachable(
                f"lost the store while waiting for {command.name}; see status later"
            )
        return None
    finally:
        follower.stop()


def describe_result(result: CommandResult) -> str:
    change = ""
    if result.outcome == "done" and (result.old_master or result.new_master):
        change = f" {result.old_master or '-'} -> {result.new_master or '-'}"
    pause = f", writes paused {format_duration(result.write_pause)}" if result.write_pause else ""
    return f"{result.kind} {result.command} {result.outcome}{change}{pause}: {result.reason}"


def report_result(
    context: Context, command_name: str, result: CommandResult | None, timeout: float
) -> int:
    """Print the outcome; exit 0 when done, raise OperationFailed otherwise."""
    if result is None:
        raise OperationFailed(
            f"no result for {command_name} within {format_duration(timeout + RESULT_MARGIN)};"
            " the sentinel may still carry it out: see `rhizomectl status` and `history`"
        )
    if result.outcome != "done":
        raise OperationFailed(describe_result(result))
    context.say(describe_result(result))
    return EXIT_OK


def follow_if_asked(context: Context, command: Command, wait: bool, timeout: float) -> int:
    """With --wait, follow the submitted command to its result; else say how to follow it."""
    if not wait:
        context.say("follow it with `rhizomectl status`, or pass --wait next time")
        return EXIT_OK
    result = wait_for_result(context, command, timeout)
    return report_result(context, command.name, result, timeout)
