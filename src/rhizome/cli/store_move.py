"""`rhizomectl store-move --to-api v3|v2 [--finish]`: move a paused cluster to the other etcd API.

The copy creates the operator's documents in the target API (rhizome.store.move);
the operator then restarts every agent with the target API in its
configuration, and `--finish` checks that they all moved and deletes the
source's documents. `rhizomectl resume` (on the target API) ends the move.
Runbook: docs/runbooks/etcd-v2.md.
"""

from __future__ import annotations

import argparse
import time
from typing import TYPE_CHECKING

from rhizome.cli.context import Context
from rhizome.cli.errors import EXIT_OK, OperationFailed, OperationRefused
from rhizome.config import ETCD_APIS, open_client
from rhizome.etcd import KeyValue
from rhizome.store.move import MoveRefused, copy_plan, finish_problems

if TYPE_CHECKING:
    from rhizome.cli.parser import CommandSet

HOLD_SETTLE = 1.0
"""Seconds to wait before telling the operator to restart the agents: a keeper departs
holding once its own watch delivered its stored `holding: true` (milliseconds); one
restarted before that would fence its PostgreSQL (its lease is on the old API)."""


def add_store_move_command(commands: CommandSet) -> None:
    move = commands.add(
        "store-move",
        "move a paused cluster's documents to etcd's other API (v2 to v3 or back)",
        run_store_move,
    )
    move.add_argument("--to-api", choices=ETCD_APIS, required=True, help="the target API")
    move.add_argument(
        "--finish",
        action="store_true",
        help="once every agent runs on the target API: check, then delete the source's documents",
    )


def run_store_move(context: Context, arguments: argparse.Namespace) -> int:
    source = context.store.client
    if source.api == arguments.to_api:
        raise OperationRefused(
            f"the cluster is read through the {source.api} API already: give the API it is in"
            " now (--etcd-api or [etcd] api) and the one to move to (--to-api)"
        )
    keys = context.store.keys
    target = open_client(source.settings, arguments.to_api, keys.root)
    source_items = source.get_prefix(keys.prefix).items
    target_items = target.get_prefix(keys.prefix).items
    if arguments.finish:
        return finish(context, source_items, target_items)
    try:
        plan = copy_plan(keys, source_items, target_items)
    except MoveRefused as refused:
        raise OperationRefused(str(refused)) from refused
    for key, value in plan:
        if target.put_if_unchanged(key, value, 0) is None:
            raise OperationFailed(f"{key} appeared in the target API meanwhile; run the move again")
    time.sleep(HOLD_SETTLE)
    context.say(
        f"copied {len(plan)} documents of cluster {context.cluster} to the {arguments.to_api} API"
        f" ({len(target_items)} were there already). Now restart every agent with"
        f' api = "{arguments.to_api}" in its [etcd] section, then run this command again with'
        " --finish, then `rhizomectl resume`."
    )
    return EXIT_OK


def finish(
    context: Context, source_items: tuple[KeyValue, ...], target_items: tuple[KeyValue, ...]
) -> int:
    problems = finish_problems(context.store.keys, source_items, target_items)
    if problems:
        raise OperationRefused("not finished: " + "; ".join(problems))
    deleted = context.store.client.delete_prefix(context.store.keys.prefix)
    context.say(
        f"deleted the {deleted} documents of cluster {context.cluster} left in the"
        f" {context.store.client.api} API; resume the cluster on the new API: rhizomectl resume"
    )
    return EXIT_OK
