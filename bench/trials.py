"""What bench/side_by_side.py measures, as plain data (also dumped as JSON)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

FAULTS = {"host death": "host_death", "PostgreSQL crash": "postgres_crash", "freeze": "freeze"}
"""Fault name -> the method of a system that injects it on a node (and returns its undo)."""
FAULT_TIMEOUT = 150.0


@dataclass
class FailoverTrial:
    system: str
    fault: str
    round: int
    seconds: float | None  # None: no write within FAULT_TIMEOUT
    lost: int


@dataclass
class SwitchoverClient:
    pause: float
    failed_connections: int
    failed_transactions: int
    lost: int
    errors: dict[str, int]  # "connect: <kind>" / "transaction: <kind>" -> count
    timeline: list[tuple[float, bool]]  # (seconds after the request, acknowledged)


@dataclass
class SwitchoverTrial:
    system: str
    round: int
    operation_seconds: float  # the command's own duration
    clients: dict[str, SwitchoverClient]  # "session", "new connection per transaction"


@dataclass
class AgentCost:
    system: str
    component: str
    processes: int
    cpu_percent: float  # of one core, all processes of the component together
    rss_mib: float


@dataclass
class Results:
    failovers: list[FailoverTrial] = field(default_factory=list)
    switchovers: list[SwitchoverTrial] = field(default_factory=list)
    costs: list[AgentCost] = field(default_factory=list)
    cost_seconds: float = 0.0
    started: str = ""
    load_before: str = ""
    load_after: str = ""
    wall_seconds: float = 0.0


def results_from_json(data: dict[str, Any]) -> Results:
    """Results as dumped by bench/side_by_side.py (dataclasses.asdict), read back."""
    switchovers = [
        SwitchoverTrial(
            system=trial["system"],
            round=trial["round"],
            operation_seconds=trial["operation_seconds"],
            clients={
                kind: SwitchoverClient(
                    **{**client, "timeline": [tuple(point) for point in client["timeline"]]}
                )
                for kind, client in trial["clients"].items()
            },
        )
        for trial in data["switchovers"]
    ]
    plain = {k: v for k, v in data.items() if k not in ("failovers", "switchovers", "costs")}
    return Results(
        failovers=[FailoverTrial(**trial) for trial in data["failovers"]],
        switchovers=switchovers,
        costs=[AgentCost(**cost) for cost in data["costs"]],
        **plain,
    )
