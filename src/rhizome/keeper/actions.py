"""Carries out one planned action against PostgreSQL and the data directory."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from psycopg2 import sql

from rhizome import clock
from rhizome.keeper import datadir
from rhizome.keeper.conffiles import (
    ConfigRequest,
    Upstream,
    render_configuration,
    write_configuration,
)
from rhizome.keeper.config import KeeperConfig
from rhizome.keeper.config_gate import record_accepted
from rhizome.keeper.database import DatabaseError, local_session, upstream_session
from rhizome.keeper.observe import file_errors
from rhizome.keeper.passwords import scram_verifier, verifier_matches
from rhizome.keeper.plan import (
    Action,
    BaseBackup,
    CreateSlots,
    DropSlots,
    EnsureRoles,
    Initdb,
    MarkRemoved,
    Promote,
    Rewind,
    RewindOutcome,
    Seal,
    Start,
    Stop,
    WriteConfig,
)
from rhizome.keeper.postgres_log import logged_since, start_reason
from rhizome.keeper.postmaster import Postmaster
from rhizome.keeper.repository_clone import clone_from_repository
from rhizome.keeper.seal import SealRecord, seal
from rhizome.keeper.start_backoff import StartRecord
from rhizome.keeper.tls import files_digest
from rhizome.spec import ClusterSpec

log = logging.getLogger(__name__)

PROMOTE_TIMEOUT = 60
LONG_STATEMENT_MS = 120_000


class ActionFailed(RuntimeError):
    """An action could not be completed; the message says what and why."""


@dataclass
class ActionContext:
    """What an action needs besides itself."""

    keeper: KeeperConfig
    postmaster: Postmaster
    spec: ClusterSpec
    request: ConfigRequest
    record_rewind: Callable[[RewindOutcome], None]
    starts: StartRecord = field(default_factory=StartRecord)
    seals: SealRecord = field(default_factory=SealRecord)


def execute(action: Action, context: ActionContext) -> None:
    """Run one action; raises ActionFailed (or a tool/database error) when it fails."""
    handler = HANDLERS[type(action)]
    handler(action, context)


def _initdb(action: Any, context: ActionContext) -> None:
    datadir.initdb(context.keeper)


def _write_config(action: Any, context: ActionContext) -> None:
    keeper = context.keeper
    rendered = render_configuration(keeper, context.spec, context.request, files_digest(keeper.tls))
    changed = write_configuration(keeper.data_dir, rendered, context.request.standby)
    if changed and context.postmaster.running:
        with local_session(keeper) as cursor:
            cursor.execute("SELECT pg_reload_conf()")
            errors = file_errors(cursor)
        if errors:
            listed = "; ".join(f"{name or 'the file'}: {error}" for name, error in errors)
            raise ActionFailed(f"PostgreSQL refuses the configuration after a reload: {listed}")
        log.info("configuration changed: reloaded")
    elif changed:
        log.info("configuration written")
    record_accepted(keeper, context.spec.pg_parameters)


def _start(action: Start, context: ActionContext) -> None:
    """Start; a failed start is recorded with PostgreSQL's reason, and backs off (plan)."""
    if not context.postmaster.start(primary=not action.standby):
        if context.postmaster.running:
            log.info("PostgreSQL is not accepting connections yet")
            return
        logged = logged_since(context.keeper, context.postmaster.log_offset)
        reason = start_reason(logged)
        context.starts.failed(clock.monotonic(), reason)
        log.error("PostgreSQL exited while starting; it logged:\n%s", logged.rstrip())
        raise ActionFailed(f"PostgreSQL exited while starting: {reason}")
    context.starts.started()


def _stop(action: Stop, context: ActionContext) -> None:
    log.info("stopping PostgreSQL: %s", action.reason)
    context.postmaster.stop(action.mode)


def _promote(action: Any, context: ActionContext) -> None:
    context.postmaster.allow_writes()
    log.info("promoting PostgreSQL")
    with local_session(context.keeper, LONG_STATEMENT_MS) as cursor:
        cursor.execute("SELECT pg_promote(true, %s)", (PROMOTE_TIMEOUT,))
        (promoted,) = cursor.fetchone()
        if not promoted:
            raise ActionFailed(f"promotion did not finish within {PROMOTE_TIMEOUT} s")
        cursor.execute("CHECKPOINT")  # the new timeline in pg_control, for pg_rewind
    log.info("promoted")


def _base_backup(action: BaseBackup, context: ActionContext) -> None:
    """From the repository when the keeper asks so and backups are on, else (or when that
    fails) from the upstream."""
    keeper, backup = context.keeper, context.spec.backup
    from_repository = keeper.clone_from == "repository" and backup.enabled
    stanza = backup.stanza_for(keeper.cluster)
    if not (
        from_repository
        and clone_from_repository(keeper, stanza, action.upstream, action.upstream_timeline)
    ):
        datadir.base_backup(keeper, action.upstream)


def _rewind(action: Rewind, context: ActionContext) -> None:
    _checkpoint_upstream(context.keeper, action.upstream)
    try:
        rewound = datadir.rewind(context.keeper, action.upstream)
    except datadir.ToolError:
        log.warning("pg_rewind failed: a fresh base backup follows")
        context.record_rewind("failed")
        raise
    if not rewound:
        context.record_rewind("not-needed")


def _checkpoint_upstream(keeper: KeeperConfig, upstream: Upstream) -> None:
    """A checkpoint on a just promoted upstream puts its new timeline in pg_control,
    where pg_rewind reads it (otherwise: "source and target are on the same timeline")."""
    try:
        with upstream_session(keeper, upstream) as cursor:
            cursor.execute("CHECKPOINT")
    except DatabaseError as error:
        log.warning("cannot checkpoint %s before pg_rewind: %s", upstream.name, error)


def _ensure_roles(action: Any, context: ActionContext) -> None:
    keeper = context.keeper
    with local_session(keeper) as cursor:
        _ensure_role(cursor, keeper.superuser, keeper.superuser_password, "SUPERUSER LOGIN")
        _ensure_role(
            cursor, keeper.replication_user, keeper.replication_password, "REPLICATION LOGIN"
        )


def _ensure_role(cursor: Any, name: str, password: str, privileges: str) -> None:
    """Create or fix a role; the password goes as a SCRAM verifier parameter."""
    cursor.execute(
        "SELECT rolsuper, rolreplication, rolcanlogin, rolpassword FROM pg_authid"
        " WHERE rolname = %s",
        (name,),
    )
    row = cursor.fetchone()
    superuser = privileges.startswith("SUPERUSER")
    privileged = row is not None and bool(row[0] if superuser else row[1])
    if privileged and row[2] and verifier_matches(row[3], password):
        return
    verb = "ALTER" if row is not None else "CREATE"
    statement = sql.SQL("{} ROLE {} WITH {} PASSWORD %s").format(
        sql.SQL(verb), sql.Identifier(name), sql.SQL(privileges)
    )
    cursor.execute(statement, (scram_verifier(password),))
    done = "altered" if row is not None else "created"
    log.info("role %s %s with the password of its password file", name, done)


def _create_slots(action: CreateSlots, context: ActionContext) -> None:
    names = datadir.managed_slots(context.keeper) | set(action.names)
    datadir.record_managed_slots(context.keeper, names)
    with local_session(context.keeper) as cursor:
        for name in action.names:
            cursor.execute("SELECT pg_create_physical_replication_slot(%s, true)", (name,))
            log.info("created replication slot %s", name)


def _drop_slots(action: DropSlots, context: ActionContext) -> None:
    with local_session(context.keeper) as cursor:
        for name in action.names:
            cursor.execute(
                "SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots"
                " WHERE slot_name = %s AND active_pid IS NOT NULL",
                (name,),
            )
            cursor.execute("SELECT pg_drop_replication_slot(%s)", (name,))
            log.info("dropped replication slot %s", name)
    names = datadir.managed_slots(context.keeper) - set(action.names)
    datadir.record_managed_slots(context.keeper, names)


def _mark_removed(action: Any, context: ActionContext) -> None:
    datadir.set_marker(context.keeper, datadir.REMOVED_MARKER, True)
    log.info("removed from the cluster: this data directory will not be started again")


def _seal(action: Any, context: ActionContext) -> None:
    seal(context.keeper, context.seals)


HANDLERS: dict[type, Callable[[Any, ActionContext], None]] = {
    Initdb: _initdb,
    WriteConfig: _write_config,
    Start: _start,
    Stop: _stop,
    Promote: _promote,
    BaseBackup: _base_backup,
    Rewind: _rewind,
    EnsureRoles: _ensure_roles,
    CreateSlots: _create_slots,
    DropSlots: _drop_slots,
    MarkRemoved: _mark_removed,
    Seal: _seal,
}
