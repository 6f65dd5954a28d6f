"""`rhizomectl status` and `history`: read the cluster at one revision and print it."""

from __future__ import annotations

import argparse
import json

from rhizome.cli.backup_status import backup_line, backup_report, read_last_backup
from rhizome.cli.context import Context
from rhizome.cli.errors import EXIT_OK
from rhizome.cli.history import history_events, history_report, render_history
from rhizome.cli.status import render_status, status_report


def run_status(context: Context, arguments: argparse.Namespace) -> int:
    """The cluster header and keeper table (store problems are shown, not fatal)."""
    view = context.store.read_view()
    last_backup = read_last_backup(context.store)
    now = context.clock()
    if arguments.json:
        report = status_report(view, context.cluster)
        report["last_backup"] = backup_report(last_backup, now)
        context.say(json.dumps(report, indent=2))
    else:
        enabled = view.spec is not None and view.spec.document.backup.enabled
        line = backup_line(last_backup, enabled, now)
        context.say(render_status(view, context.cluster, now, [line] if line else []))
    return EXIT_OK


def run_history(context: Context, arguments: argparse.Namespace) -> int:
    """Role changes and finished commands, newest last."""
    stored = context.store.read_state()  # a corrupt state names its key
    events = history_events(stored.document if stored else None)
    if arguments.limit is not None:
        events = events[-arguments.limit :] if arguments.limit > 0 else []
    if arguments.json:
        context.say(json.dumps(history_report(events), indent=2))
    else:
        context.say(render_history(events))
    return EXIT_OK
