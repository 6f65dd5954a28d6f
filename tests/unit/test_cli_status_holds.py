"""rhizomectl and pause holds: status lines, JSON, failover refusal and its flag (pure)."""

from __future__ import annotations

import json

from rhizome.cli.commands import command_refusal
from rhizome.cli.parser import build_parser
from rhizome.cli.status import render_status, status_report
from rhizome.spec import ClusterSpec, parse_spec
from tests.unit.test_cli_status import NOW, keeper, running_state, view_of

HELD = running_state(paused_holds={"pg1": "data-a"})
STANDBYS = (keeper("pg2", role="standby"), keeper("pg3", role="standby"))


def header(text: str, label: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith(label + ":")]


def test_status_shows_a_hold_whose_keeper_is_gone_and_the_way_out() -> None:
    view = view_of(ClusterSpec(), HELD, *STANDBYS)
    (line,) = header(render_status(view, "main", NOW), "held while paused")
    assert "pg1 (instance data-a): its keeper does not report" in line
    assert "its PostgreSQL may still run unfenced" in line
    assert "`rhizomectl failover --to STANDBY --old-master-stopped`" in line
    report = json.loads(json.dumps(status_report(view, "main")))
    hold = report["paused_holds"]["pg1"]
    assert hold["instance_id"] == "data-a"
    assert "master pg1 was held while paused" in hold["blocks_failover"]


def test_status_while_paused_and_once_the_keeper_fences_again() -> None:
    master = keeper("pg1", role="primary", instance_id="data-a", holding=True)
    paused = view_of(parse_spec({"paused": True}), HELD, master, *STANDBYS)
    (line,) = header(render_status(paused, "main", NOW), "held while paused")
    assert line.endswith(
        "pg1 (instance data-a): its PostgreSQL outlives its keeper until the resume"
    )
    rearmed = keeper("pg1", role="primary", instance_id="data-a")
    resumed = view_of(ClusterSpec(), HELD, rearmed, *STANDBYS)
    (line,) = header(render_status(resumed, "main", NOW), "held while paused")
    assert "fences normally again" in line
    assert status_report(resumed, "main")["paused_holds"]["pg1"]["blocks_failover"] is None


def test_another_instance_under_the_held_name_is_named() -> None:
    other = keeper("pg1", role="primary", instance_id="data-b")
    view = view_of(ClusterSpec(), HELD, other, *STANDBYS)
    (line,) = header(render_status(view, "main", NOW), "held while paused")
    assert "now reported by another instance (data-b)" in line


def test_no_hold_no_line_and_an_empty_report() -> None:
    view = view_of(ClusterSpec(), running_state(), keeper("pg1", role="primary"), *STANDBYS)
    assert header(render_status(view, "main", NOW), "held while paused") == []
    assert status_report(view, "main")["paused_holds"] == {}


def test_a_failover_is_refused_while_held_unless_the_old_master_is_confirmed_stopped() -> None:
    spec = ClusterSpec()
    view = view_of(spec, HELD, *STANDBYS)
    refusal = command_refusal(view, spec, "failover", "pg2") or ""
    assert "master pg1 was held while paused" in refusal
    assert command_refusal(view, spec, "failover", "pg2", old_master_stopped=True) is None


def test_the_failover_command_line_takes_old_master_stopped() -> None:
    parser = build_parser()
    arguments = parser.parse_args(["failover", "--to", "pg2", "--old-master-stopped"])
    assert arguments.old_master_stopped is True
    assert parser.parse_args(["failover", "--to", "pg2"]).old_master_stopped is False
