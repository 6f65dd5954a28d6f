"""Our own etcd v3 client on the JSON gateway (DESIGN §4)."""

from rhizome.etcd.client import EtcdClient, KeyValue, Lease, RangeResult
from rhizome.etcd.errors import (
    EtcdAuthError,
    EtcdConfigurationError,
    EtcdError,
    EtcdLeaseExpired,
    EtcdRequestError,
    EtcdUnavailable,
)
from rhizome.etcd.transport import EtcdSettings
from rhizome.etcd.watch import EventKind, PrefixWatcher, WatchEvent, WatchUpdate

__all__ = [
    "EtcdAuthError",
    "EtcdClient",
    "EtcdConfigurationError",
    "EtcdError",
    "EtcdLeaseExpired",
    "EtcdRequestError",
    "EtcdSettings",
    "EtcdUnavailable",
    "EventKind",
    "KeyValue",
    "Lease",
    "PrefixWatcher",
    "RangeResult",
    "WatchEvent",
    "WatchUpdate",
]
