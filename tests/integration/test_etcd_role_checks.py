"""The etcd role refuses raft timing that etcd would refuse, before it changes anything.

ansible-playbook runs the role against localhost (local connection) in check
mode, so that even a role whose checks let bad values through changes nothing
on the machine running the tests.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.integration.test_ansible_modules import ANSIBLE_PLAYBOOK, ansible_environment

pytestmark = pytest.mark.integration


def run_etcd_role(directory: Path, variables: dict[str, int]) -> subprocess.CompletedProcess[str]:
    directory.mkdir(parents=True, exist_ok=True)
    playbook = directory / "play.yml"
    play = {"hosts": "etcd", "gather_facts": False, "roles": [{"role": "rhizome.pg.etcd"}]}
    address = {"etcd_address": "127.0.0.1"}  # instead of gathered facts
    playbook.write_text(json.dumps([play | {"vars": {**address, **variables}}]))
    inventory = directory / "inventory.ini"
    inventory.write_text(
        f"[etcd]\nlocalhost ansible_connection=local ansible_python_interpreter={sys.executable}\n"
    )
    return subprocess.run(
        [str(ANSIBLE_PLAYBOOK), "--check", "-i", str(inventory), str(playbook)],
        cwd=directory, env=ansible_environment(directory), capture_output=True, text=True,
        timeout=240,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("heartbeat", "election"),
    [(100, 400), (5, 500), (50, 60000)],
    ids=["fewer than five heartbeats", "heartbeat under 10 ms", "over etcd's maximum"],
)
def test_raft_timing_that_etcd_refuses_stops_the_role_first(
    tmp_path: Path, heartbeat: int, election: int
) -> None:
    completed = run_etcd_role(
        tmp_path, {"etcd_heartbeat_interval": heartbeat, "etcd_election_timeout": election}
    )
    output = completed.stdout + completed.stderr
    assert completed.returncode != 0, output
    assert "TASK [rhizome.pg.etcd : Check the raft timing]" in output, output
    assert f"etcd_election_timeout ({election} ms) must be at least five times" in output, output
    assert "changed=0" in output and "Install" not in output, output
