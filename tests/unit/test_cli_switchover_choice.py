"""switchover_choice: the sentinel's candidate rules applied to a ClusterView (pure)."""

from __future__ import annotations

from rhizome.cli.commands import switchover_choice
from rhizome.spec import ClusterSpec, parse_spec
from rhizome.store.documents import ClusterState, KeeperAssignment, KeeperInfo
from rhizome.store.view import ClusterView
from tests.unit.test_cli_status import NOW, keeper, view_of

MIB = 1024 * 1024
IDENTIFIER = "7301234567890123456"


def cluster(spec: ClusterSpec, pg3_behind: int) -> ClusterView:
    def member(name: str, **fields: object) -> KeeperInfo:
        return keeper(name, system_identifier=IDENTIFIER, **fields)

    state = ClusterState(
        generation=7, initialized=True, master="pg1", master_timeline=3,
        system_identifier=IDENTIFIER,
        assignments={
            "pg1": KeeperAssignment(role="master"),
            "pg2": KeeperAssignment(role="standby", follow="pg1"),
            "pg3": KeeperAssignment(role="standby", follow="pg1"),
        },
    )  # fmt: skip
    return view_of(
        spec,
        state,
        member("pg1", role="primary", flush_lsn=100 * MIB),
        member("pg2", role="standby", receive_lsn=99 * MIB, replay_lsn=99 * MIB),
        member("pg3", role="standby", receive_lsn=100 * MIB - pg3_behind),
    )


def test_the_most_advanced_eligible_standby_is_chosen():
    spec = ClusterSpec()
    assert switchover_choice(cluster(spec, 0), spec, None, NOW).best == "pg3"
    assert switchover_choice(cluster(spec, 0), spec, "pg2", NOW).best == "pg2"


def test_a_lagging_or_excluded_target_is_refused_with_the_reason():
    spec = ClusterSpec()
    lagging = switchover_choice(cluster(spec, 40 * MIB), spec, "pg3", NOW)
    assert lagging.best is None
    assert lagging.describe().startswith("pg3 is 40.0 MiB behind the master's last known position")
    assert switchover_choice(cluster(spec, 40 * MIB), spec, None, NOW).best == "pg2"
    excluded = parse_spec({"keepers": {"pg2": {"maintenance": True}}})
    nobody = switchover_choice(cluster(excluded, 40 * MIB), excluded, None, NOW)
    assert nobody.best is None
    assert nobody.describe() == (
        "no eligible standby: pg2 is in maintenance; pg3 is 40.0 MiB behind the master's last "
        "known position (bound 16.0 MiB)"
    )
