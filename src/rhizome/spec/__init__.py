"""The cluster spec: the operator's validated wishes, stored in the `spec` key."""

from rhizome.spec.model import (
    ClusterSpec,
    InitMode,
    KeeperSettings,
    SpecError,
    SynchronousReplicationSettings,
    parse_spec,
)
from rhizome.spec.postgres import MANAGED_PARAMETERS, HbaEntry, HbaMethod, HbaType
from rhizome.spec.timing import FENCE_MARGIN, TimingSettings

__all__ = [
    "FENCE_MARGIN",
    "MANAGED_PARAMETERS",
    "ClusterSpec",
    "HbaEntry",
    "HbaMethod",
    "HbaType",
    "InitMode",
    "KeeperSettings",
    "SpecError",
    "SynchronousReplicationSettings",
    "TimingSettings",
    "parse_spec",
]
