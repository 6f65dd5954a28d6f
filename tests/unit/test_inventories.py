"""The cluster specs declared in the shipped inventories stay valid as the spec model evolves."""

from pathlib import Path

import pytest
import yaml

from rhizome.spec import parse_spec

ROOT = Path(__file__).resolve().parents[2]
INVENTORY_SPECS = sorted(ROOT.glob("inventories/*/group_vars/all/rhizome.yml"))


def test_both_inventories_are_checked() -> None:
    assert {path.parts[-4] for path in INVENTORY_SPECS} == {"demo", "example"}


@pytest.mark.parametrize("path", INVENTORY_SPECS, ids=lambda path: path.parts[-4])
def test_the_declared_spec_is_valid(path: Path) -> None:
    declared = yaml.safe_load(path.read_text())["rhizome_cluster_spec"]
    spec = parse_spec(declared)
    assert spec.synchronous_replication.enabled
    assert spec.pg_hba, "clients need a pg_hba entry to connect through the proxies"
