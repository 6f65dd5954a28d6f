"""The campaign's store-side convergence check (chaos/convergence.py)."""

from __future__ import annotations

from rhizome.store.documents import KeeperInfo
from rhizome.store.view import ClusterView, Stored
from tests.unit.sentinel_builders import PROXY_GENERATION, primary, proxy, standby, state

PROXIES = ["proxy-pg1", "proxy-pg2"]


def view(keepers: list[KeeperInfo], acks: tuple[int, ...] = (PROXY_GENERATION,) * 2) -> ClusterView:
    return ClusterView(
        revision=1,
        state=Stored(state(), 1),
        keepers={info.name: Stored(info, 1) for info in keepers},
        proxies={pid: Stored(proxy(pid, ack), 1) for pid, ack in zip(PROXIES, acks, strict=True)},
    )


def problems(cluster_view: ClusterView) -> list[str]:
    from chaos.convergence import convergence_problems

    return convergence_problems(cluster_view, ["pg1", "pg2", "pg3"], PROXIES)


STREAMING = primary("pg1", streaming_standbys=("pg2", "pg3"))


def test_a_master_with_streaming_standbys_and_acknowledging_proxies_has_converged() -> None:
    assert problems(view([STREAMING, standby("pg2"), standby("pg3")])) == []


def test_a_standby_not_streaming_or_on_another_timeline_has_not() -> None:
    master = primary("pg1", streaming_standbys=("pg2",))
    assert problems(view([master, standby("pg2"), standby("pg3")])) == [
        "pg3: standby, running=True, streaming=False"
    ]
    other_timeline = standby("pg3", timeline=2)
    assert problems(view([STREAMING, standby("pg2"), other_timeline])) == ["pg3: timeline 2 != 1"]


def test_a_proxy_behind_the_current_generation_or_missing_has_not() -> None:
    found = problems(view([STREAMING, standby("pg2"), standby("pg3")], (PROXY_GENERATION - 1, 4)))
    assert found == [f"proxy-pg1: acknowledged {PROXY_GENERATION - 1}, current {PROXY_GENERATION}"]


def test_a_routed_master_that_is_not_a_running_primary_has_not() -> None:
    assert problems(view([standby("pg1"), standby("pg2"), standby("pg3")])) == [
        "master pg1 is standby, running=True"
    ]
