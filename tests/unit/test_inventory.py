"""The generated inventory: groups, per-node connection and node_ip, all config as `kit`."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from labkit import inventory
from labkit.config import HostContext, load
from labkit.errors import KitError
from labkit.vagrant import SshEndpoint
from tests.unit.test_config_errors import VALID, write

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
    }
    assert inv["all"]["vars"]["kit"]["versions"]["kubernetes"] == "1.36.5"


def test_real_machines_keep_host_key_checking(tmp_path: Path) -> None:
    resolved = load(write(tmp_path, VALID), HostContext()).to_dict()
    inv = inventory.render(resolved, EPS, vagrant=False)
    host = inv["all"]["children"]["cluster"]["children"]["control_plane"]["hosts"]["cp1"]
    assert "ansible_ssh_common_args" not in host


def test_a_node_without_endpoint_is_a_clear_error(tmp_path: Path) -> None:
    resolved = load(write(tmp_path, VALID), HostContext()).to_dict()
    with pytest.raises(KitError, match=r"no SSH endpoint for worker1.*\./kit up"):
        inventory.render(resolved, {"cp1": EPS["cp1"]})
