"""The campaign's hand-written SVG plots (chaos/plots.py)."""

from __future__ import annotations

import xml.etree.ElementTree as ElementTree
from pathlib import Path

import pytest

from chaos import report
from chaos.campaign import CampaignResult, FaultRecord
from chaos.plan import Fault
from chaos.plots import (
    TIMELINE_LEFT,
    TIMELINE_RIGHT,
    FaultBand,
    fault_bands,
    per_second_rates,
    place_labels,
    timeline_svg,
    unavailability_by_kind,
    unavailability_svg,
    write_plots,
)
from chaos.svg import nice_ceiling, tick_step
from chaos.workload import WorkloadRecord

SVG = "{http://www.w3.org/2000/svg}"


def parse(svg: str) -> ElementTree.Element:
    root = ElementTree.fromstring(svg)  # noqa: S314 (our own output)
    assert root.tag == f"{SVG}svg"
    assert root.get("font-family") == "sans-serif"
    return root


def with_class(root: ElementTree.Element, tag: str, name: str) -> list[ElementTree.Element]:
    return [element for element in root.iter(f"{SVG}{tag}") if element.get("class") == name]


def texts(root: ElementTree.Element) -> list[str]:
    return [element.text or "" for element in root.iter(f"{SVG}text")]


def axis_labels(root: ElementTree.Element, name: str) -> list[str]:
    [axis] = with_class(root, "g", name)
    return [element.text or "" for element in axis.iter(f"{SVG}text")]


def test_unavailability_has_one_dot_per_fault_and_a_row_per_kind() -> None:
    per_kind = {"node-kill": [1.0, 2.5, 7.25], "etcd-freeze": [0.5], "switchover": [0.1, 0.1]}
    root = parse(unavailability_svg(per_kind))
    rows = with_class(root, "g", "kind")
    assert len(rows) == 3
    for row, (kind, values) in zip(rows, per_kind.items(), strict=True):
        row_texts = [element.text for element in row.iter(f"{SVG}text")]
        assert row_texts[0] == kind
        dots = with_class(row, "circle", "fault")
        assert [dot.findtext(f"{SVG}title") for dot in dots] == [f"{v:.2f} s" for v in values]
        assert len(with_class(row, "line", "median")) == 1
        assert len(with_class(row, "circle", "maximum")) == 1
    assert "n 3, median 2.50, max 7.25 s" in texts(root)


def test_unavailability_dots_sit_at_their_values_on_the_seconds_axis() -> None:
    root = parse(unavailability_svg({"node-kill": [0.0, 3.0, 6.0]}))
    labels = axis_labels(root, "x-axis")
    assert labels[0] == "0" and labels[-2] == "6"  # the last text is the axis label
    assert "seconds" in labels[-1]
    xs = [float(dot.get("cx", "")) for dot in with_class(root, "circle", "fault")]
    assert xs[0] < xs[1] < xs[2]
    assert xs[1] - xs[0] == pytest.approx(xs[2] - xs[1], abs=0.1)
    [row] = with_class(root, "g", "kind")
    [median] = with_class(row, "line", "median")
    assert float(median.get("x1", "")) == pytest.approx(xs[1], abs=0.1)


def test_odd_kind_names_are_escaped() -> None:
    odd = "a<b & \"c\" 'd' >e"
    svg = unavailability_svg({odd: [1.0]}, title="<title & more>")
    root = parse(svg)
    assert odd in texts(root)
    assert "<title & more>" in texts(root)
    band = FaultBand(1, odd, 1.0, 2.0, None)
    timeline = parse(timeline_svg([band], [], [], (0.0, 10.0)))
    assert f"#1 {odd}" in texts(timeline)


def test_no_faults_at_all_and_a_kind_without_faults_say_so() -> None:
    root = parse(unavailability_svg({}))
    assert "no faults" in texts(root)
    assert not with_class(root, "circle", "fault")
    root = parse(unavailability_svg({"node-kill": [], "etcd-kill": [2.0]}))
    [empty, full] = with_class(root, "g", "kind")
    assert [element.text for element in empty.iter(f"{SVG}text")] == ["node-kill", "no faults"]
    assert len(with_class(full, "circle", "fault")) == 1


def test_per_second_rates_bin_by_whole_seconds_from_the_window_start() -> None:
    moments = [9.0, 10.0, 10.2, 10.99, 11.0, 12.5, 12.6, 13.0, 14.0]
    assert per_second_rates(moments, 10.0, 13.0) == [3.0, 1.0, 2.0]
    # the last bin is half a second wide: one event in it is two per second
    assert per_second_rates([0.1, 1.2, 2.4], 0.0, 2.5) == [1.0, 1.0, 2.0]
    assert per_second_rates([], 0.0, 2.0) == [0.0, 0.0]
    assert per_second_rates([1.0], 5.0, 5.0) == []


def test_round_ticks() -> None:
    assert tick_step(600) == 100
    assert tick_step(7) == 2
    assert tick_step(0.3) == pytest.approx(0.05)
    assert nice_ceiling(7.25) == 8
    assert nice_ceiling(0) == 1
    assert nice_ceiling(40) == 40


def test_the_timeline_axis_covers_the_window_and_bands_are_clipped_to_it() -> None:
    bands = [
        FaultBand(1, "node-kill", -5.0, 3.0, 8.0),
        FaultBand(2, "etcd-outage", 50.0, 110.0, 130.0),
        FaultBand(3, "proxy-kill", 590.0, 598.0, 640.0),
        FaultBand(4, "node-freeze", 700.0, 710.0, 720.0),
    ]
    root = parse(timeline_svg(bands, [], [], (0.0, 600.0)))
    labels = axis_labels(root, "x-axis")
    assert labels[:-1] == ["0", "100", "200", "300", "400", "500", "600"]
    faults = with_class(root, "g", "fault")
    assert [fault.findtext(f"{SVG}title", "").split(":")[0] for fault in faults] == [
        "#1 node-kill", "#2 etcd-outage", "#3 proxy-kill",
    ]  # fmt: skip
    for fault in faults:
        for shape in fault.iter(f"{SVG}rect"):
            left, width = float(shape.get("x", "")), float(shape.get("width", ""))
            assert left >= TIMELINE_LEFT and left + width <= TIMELINE_RIGHT + 0.1


def test_a_window_later_in_the_run() -> None:
    root = parse(timeline_svg([], [], [], (550.0, 1150.0)))
    labels = axis_labels(root, "x-axis")
    assert labels[0] == "600" and labels[-2] == "1100"
    with pytest.raises(ValueError):
        timeline_svg([], [], [], (10.0, 10.0))


def test_the_rate_line_has_a_point_per_second_and_failures_are_red_marks() -> None:
    successes = [0.1, 0.2, 0.3, 1.5, 3.0, 3.1]
    failures = [2.0, 2.001, 2.5, 50.0]
    root = parse(timeline_svg([FaultBand(1, "node-kill", 1.0, 2.0, 3.0)], successes, failures,
                              (0.0, 4.0)))  # fmt: skip
    [rate] = with_class(root, "polyline", "rate")
    points = [tuple(map(float, pair.split(","))) for pair in rate.get("points", "").split()]
    assert len(points) == 4
    heights = [point[1] for point in points]  # higher rates are drawn higher (smaller y)
    assert heights[2] > heights[1] > heights[0] and heights[3] < heights[1]
    marks = with_class(root, "line", "failure")
    assert len(marks) == 2  # 2.0 and 2.001 share a pixel column; 50.0 is outside the window
    assert all(mark.get("stroke") == "#d62728" for mark in marks)


def test_labels_take_a_free_lane_and_shorten_or_give_up_when_crowded() -> None:
    candidates = [(100.0, ["#1 node-kill", "#1"]), (110.0, ["#2 node-kill", "#2"]),
                  (120.0, ["#3 node-kill", "#3"])]  # fmt: skip
    assert place_labels(candidates, 2, 900.0) == [(0, "#1 node-kill"), (1, "#2 node-kill"), None]
    assert place_labels([(880.0, ["#9 node-kill", "#9"])], 1, 900.0) == [(0, "#9")]


def test_the_same_input_gives_the_same_text() -> None:
    bands = [FaultBand(1, "node-kill", 1.0, 2.0, None)]
    first = timeline_svg(bands, [0.5, 1.5], [1.2], (0.0, 5.0))
    assert first == timeline_svg(bands, [0.5, 1.5], [1.2], (0.0, 5.0))
    assert unavailability_svg({"a": [1.0]}) == unavailability_svg({"a": [1.0]})


def campaign(tmp_path: Path) -> CampaignResult:
    successes = [100.0 + step * 0.1 for step in range(700) if not 210 <= step < 260]
    inserts, bank = WorkloadRecord(successes, [121.0, 122.0], []), WorkloadRecord([], [123.0], [])
    records = [
        FaultRecord(Fault(1, "etcd-kill", "master", 3.0), "n1", 110.0, 113.0, 115.0),
        FaultRecord(Fault(2, "node-kill", "master", 4.0), "n2", 120.0, 124.0, 127.0),
        FaultRecord(Fault(3, "node-kill", "standby1", 4.0), "n3", 140.0, 144.0, None),
    ]
    return CampaignResult(1, "sync", records, [], inserts, bank, [], 10000, 150.0, 16 << 20,
                          100.0, 170.0, 1.7e9, tmp_path)  # fmt: skip


def test_unavailability_by_kind_measures_as_the_report_does_in_kind_order(tmp_path: Path) -> None:
    result = campaign(tmp_path)
    per_kind = unavailability_by_kind(result)
    assert list(per_kind) == ["node-kill", "etcd-kill"]  # the order of ALL_KINDS
    assert per_kind["node-kill"] == [
        report.unavailability(result, result.records[1]),
        report.unavailability(result, result.records[2]),
    ]
    assert per_kind["etcd-kill"] == [report.unavailability(result, result.records[0])]
    assert per_kind["node-kill"][0] == pytest.approx(5.1)


def test_write_plots_creates_the_directory_and_both_files(tmp_path: Path) -> None:
    result = campaign(tmp_path)
    directory = tmp_path / "docs" / "reliability"
    paths = write_plots(result, directory)
    assert [path.name for path in paths] == [
        "reliability-unavailability-sync.svg", "reliability-timeline-sync.svg",
    ]  # fmt: skip
    timeline = parse(paths[1].read_text(encoding="utf-8"))
    assert axis_labels(timeline, "x-axis")[:-1] == ["0", "20", "40", "60"]  # of 0 to 70 s
    assert len(with_class(timeline, "g", "fault")) == 3
    assert [band.converged for band in fault_bands(result)] == [15.0, 27.0, None]
    assert len(with_class(parse(paths[0].read_text()), "circle", "fault")) == 3
