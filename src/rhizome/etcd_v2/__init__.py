"""The store's client on etcd's v2 API, through python-etcd (`[etcd] api = "v2"`)."""

from rhizome.etcd_v2.client import EtcdV2Client
from rhizome.etcd_v2.watch import V2PrefixWatcher

__all__ = ["EtcdV2Client", "V2PrefixWatcher"]
