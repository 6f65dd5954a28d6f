"""What the keeper writes when PostgreSQL refuses some pg_parameters (pure)."""

from __future__ import annotations

from rhizome.keeper.config_gate import effective_parameters, refusal_text
from rhizome.pgconfig.scratch import UNATTRIBUTED

REFUSED = {"shared_buffers": 'invalid value for parameter "shared_buffers": "banana"'}


def test_a_refused_value_keeps_its_last_good_value_and_other_changes_apply() -> None:
    wanted = {"shared_buffers": "banana", "work_mem": "64MB"}
    last_good = {"shared_buffers": "1GB", "work_mem": "4MB", "jit": False}
    assert effective_parameters(wanted, REFUSED, last_good) == {
        "shared_buffers": "1GB",
        "work_mem": "64MB",
    }


def test_a_refused_value_without_a_last_good_one_is_left_out() -> None:
    wanted = {"shared_buffers": "banana", "work_mem": "64MB"}
    assert effective_parameters(wanted, REFUSED, None) == {"work_mem": "64MB"}
    assert effective_parameters(wanted, REFUSED, {"work_mem": "1MB"}) == {"work_mem": "64MB"}


def test_an_error_naming_no_parameter_keeps_all_the_last_good_ones() -> None:
    refused = {UNATTRIBUTED: "syntax error"}
    assert effective_parameters({"a": 1}, refused, {"b": 2}) == {"b": 2}
    assert effective_parameters({"a": 1}, refused, None) == {}


def test_nothing_refused_writes_what_is_wanted() -> None:
    assert effective_parameters({"work_mem": "64MB"}, {}, {"work_mem": "1MB"}) == {
        "work_mem": "64MB"
    }


def test_the_report_names_parameter_value_reason_and_what_is_kept() -> None:
    text = refusal_text(REFUSED, {"shared_buffers": "banana"}, {"shared_buffers": "1GB"})
    assert text == (
        "PostgreSQL refuses the configuration: pg_parameters.shared_buffers = 'banana': "
        'invalid value for parameter "shared_buffers": "banana" (kept at \'1GB\')'
    )
    assert refusal_text(REFUSED, {"shared_buffers": "banana"}, None).endswith("(left out)")
