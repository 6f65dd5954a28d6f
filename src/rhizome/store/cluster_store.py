"""ClusterStore: typed reads and writes of one cluster's documents in etcd.

Each key has exactly one kind of writer (DESIGN §1), and the methods follow
that table: `spec` and `state` are written with compare-and-swap, commands and
the leader key are created only if absent, and agents publish their own
documents on their leases. Every write validates before it encodes, so an
invalid document never reaches the store.
"""

from __future__ import annotations

from rhizome.etcd.interface import StoreClient, Watcher
from rhizome.spec import ClusterSpec
from rhizome.store.backups import LAST_BACKUP, BackupRecord
from rhizome.store.codec import DocumentType, encode_document
from rhizome.store.documents import (
    ClusterState,
    Command,
    KeeperInfo,
    LeaderInfo,
    ProxyInfo,
    SentinelInfo,
)
from rhizome.store.keys import DEFAULT_ROOT, ClusterKeys, KeyKind
from rhizome.store.view import ClusterView, Stored, build_view, decode_stored


class ClusterStore:
    """The documents of one cluster, on top of an etcd client (v3 or v2)."""

    def __init__(self, client: StoreClient, cluster: str, root: str = DEFAULT_ROOT) -> None:
        self.client = client
        self.keys = ClusterKeys(cluster, root)

    def read_view(self) -> ClusterView:
        """Everything under the cluster prefix, read at one revision."""
        result = self.client.get_prefix(self.keys.prefix)
        return build_view(self.keys, result.revision, result.items)

    def watcher(self, idle_timeout: float = 5.0) -> Watcher:
        """A watcher of the whole cluster prefix (feed its snapshots and events to a view)."""
        return self.client.watcher(self.keys.prefix, idle_timeout=idle_timeout)

    # -- spec and state: compare-and-swap -----------------------------------

    def read_spec(self) -> Stored[ClusterSpec] | None:
        """The spec, or None before `rhizomectl init`; raises StoreDocumentError if corrupt."""
        return self._read_single(KeyKind.SPEC, ClusterSpec)

    def write_spec(self, spec: ClusterSpec, expected_revision: int) -> int | None:
        """Write the spec if it is still at `expected_revision` (0: only if absent).

        Returns the new revision, or None when somebody else wrote it first.
        """
        key = self.keys.single(KeyKind.SPEC)
        return self.client.put_if_unchanged(key, encode_document(spec), expected_revision)

    def read_state(self) -> Stored[ClusterState] | None:
        return self._read_single(KeyKind.STATE, ClusterState)

    def write_state(
        self, state: ClusterState, expected_revision: int, leader_revision: int | None = None
    ) -> int | None:
        """Leader sentinel only: compare-and-swap of the state document.

        With `leader_revision`, the write also requires the leader key to be the
        one created at that revision, so a deposed leader can never write.
        """
        key = self.keys.single(KeyKind.STATE)
        leader = (
            {} if leader_revision is None else {self.keys.single(KeyKind.LEADER): leader_revision}
        )
        return self.client.put_if_unchanged(
            key, encode_document(state), expected_revision, also_unchanged=leader
        )

    # -- agents' own documents, on their leases ------------------------------

    def publish_keeper(self, info: KeeperInfo, lease: int) -> int:
        key = self.keys.member(KeyKind.KEEPER, info.name)
        return self.client.put(key, encode_document(info), lease=lease)

    def publish_keeper_if(self, info: KeeperInfo, lease: int, expected_revision: int) -> int | None:
        """Publish only if the key is still at `expected_revision` (0: absent); None if not."""
        key = self.keys.member(KeyKind.KEEPER, info.name)
        return self.client.put_if_unchanged(key, encode_document(info), expected_revision, lease)

    def publish_sentinel(self, info: SentinelInfo, lease: int) -> int:
        key = self.keys.member(KeyKind.SENTINEL, info.id)
        return self.client.put(key, encode_document(info), lease=lease)

    def publish_proxy(self, info: ProxyInfo, lease: int) -> int:
        key = self.keys.member(KeyKind.PROXY, info.id)
        return self.client.put(key, encode_document(info), lease=lease)

    def remove_keeper(self, name: str) -> bool:
        """Delete a keeper's published document (its lease may also still hold it)."""
        return self.client.delete(self.keys.member(KeyKind.KEEPER, name))

    # -- leader election -----------------------------------------------------

    def campaign(self, leader: LeaderInfo, lease: int) -> bool:
        """Become leader if nobody is: create the leader key on our lease.

        Without multi-key transactions (etcd's v2 API) the guard of `write_state`
        reads the leader key just before the compare-and-swap of state, so a new
        leader first rewrites state unchanged: a deposed leader that passed its
        check before that cannot write state any more (its compare fails).
        """
        key = self.keys.single(KeyKind.LEADER)
        won = self.client.put_if_unchanged(key, encode_document(leader), 0, lease) is not None
        if won and not self.client.multi_key_compare:
            self._claim_state()
        return won

    def _claim_state(self) -> None:
        key = self.keys.single(KeyKind.STATE)
        current = self.client.get(key)
        if current is not None:
            self.client.put_if_unchanged(key, current.value, current.mod_revision)

    def read_leader(self) -> Stored[LeaderInfo] | None:
        return self._read_single(KeyKind.LEADER, LeaderInfo)

    # -- operator commands ----------------------------------------------------

    def submit_command(self, command: Command) -> bool:
        """Create the command; False when one of that name is already pending."""
        key = self.keys.member(KeyKind.COMMAND, command.name)
        return self.client.put_if_unchanged(key, encode_document(command), 0) is not None

    def finish_command(self, name: str, mod_revision: int) -> bool:
        """Remove a command the leader sentinel has finished (if it was not replaced)."""
        key = self.keys.member(KeyKind.COMMAND, name)
        return self.client.delete_if_unchanged(key, mod_revision)

    # -- backups: written by `rhizomectl backup run` only -----------------------

    def record_last_backup(self, record: BackupRecord) -> int:
        """Store the outcome of the backup just attempted (backups/last)."""
        key = self.keys.member(KeyKind.BACKUPS, LAST_BACKUP)
        return self.client.put(key, encode_document(record))

    def read_last_backup(self) -> Stored[BackupRecord] | None:
        """The last backup's outcome; None before the first; StoreDocumentError if corrupt."""
        item = self.client.get(self.keys.member(KeyKind.BACKUPS, LAST_BACKUP))
        return None if item is None else decode_stored(item, BackupRecord)

    def _read_single(
        self, kind: KeyKind, document_type: type[DocumentType]
    ) -> Stored[DocumentType] | None:
        item = self.client.get(self.keys.single(kind))
        return None if item is None else decode_stored(item, document_type)
