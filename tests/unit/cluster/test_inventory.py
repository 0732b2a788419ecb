"""The generated inventory: groups, per-node connection and node_ip, all config as `kit`."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from labkit.cluster import inventory
from labkit.cluster.config import load
from labkit.cluster.resolved import HostContext
from labkit.cluster.vagrant import SshEndpoint
from labkit.errors import KitError
from tests.unit.configs import VALID, write

EPS = {
    "cp1": SshEndpoint("192.168.121.10", 22, "vagrant", "/k/cp1"),
    "worker1": SshEndpoint("192.168.121.11", 2222, "vagrant", "/k/w1"),
}


def test_groups_and_host_vars(tmp_path: Path) -> None:
    resolved = load(write(tmp_path, VALID), HostContext()).to_dict()
    inv = yaml.safe_load(inventory.dump(inventory.render(resolved, EPS)))
    groups = inv["all"]["children"]["cluster"]["children"]
    assert list(groups["control_plane"]["hosts"]) == ["cp1"]
    assert list(groups["workers"]["hosts"]) == ["worker1"]
    w1 = groups["workers"]["hosts"]["worker1"]
    assert w1 == {
        "ansible_host": "192.168.121.11",
        "ansible_port": 2222,
        "ansible_user": "vagrant",
        "node_ip": "192.168.56.12",
        "node_role": "worker",
        "ansible_ssh_private_key_file": "/k/w1",
        "ansible_ssh_common_args": inventory.VAGRANT_SSH_ARGS,
        "ansible_host_key_checking": False,
    }
    assert inv["all"]["vars"]["kit"]["versions"]["kubernetes"] == "1.36.4"


def test_real_machines_keep_host_key_checking(tmp_path: Path) -> None:
    resolved = load(write(tmp_path, VALID), HostContext()).to_dict()
    inv = inventory.render(resolved, EPS, vagrant=False)
    host = inv["all"]["children"]["cluster"]["children"]["control_plane"]["hosts"]["cp1"]
    assert "ansible_ssh_common_args" not in host and "ansible_host_key_checking" not in host


def test_a_node_without_endpoint_is_a_clear_error(tmp_path: Path) -> None:
    resolved = load(write(tmp_path, VALID), HostContext()).to_dict()
    with pytest.raises(KitError, match=r"no SSH endpoint for worker1.*\./kit up"):
        inventory.render(resolved, {"cp1": EPS["cp1"]})


@pytest.mark.parametrize("on", [True, False])
def test_a_layer_that_is_off_runs_no_play(tmp_path: Path, on: bool) -> None:
    import subprocess

    from labkit.cluster import runner

    root = Path(__file__).resolve().parents[3]
    data = yaml.safe_load(VALID)
    data["layers"] = {"kubernetes": on, "istio": on, "knative": on}
    resolved = load(write(tmp_path, yaml.safe_dump(data)), HostContext()).to_dict()
    (tmp_path / "inventory.yml").write_text(inventory.dump(inventory.render(resolved, EPS)))
    out = subprocess.run(
        [runner.ansible_tool("ansible-playbook"), "-i", str(tmp_path / "inventory.yml"), "--list-hosts", "playbooks/site.yml"],
        cwd=root,
        env=runner.ansible_env(root, tmp_path / "state"),
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    plays = out.split("play #")[1:]
    layer_plays = [p for p in plays if p.split("(")[1].startswith(("cluster:&layer", "control_plane:&layer", "workers:&layer", "control_plane[0]:&layer"))]
    assert len(layer_plays) == 8
    for play in layer_plays:
        assert ("hosts (0)" in play) != on, play
    assert all("hosts (0)" not in p for p in plays if p not in layer_plays)
