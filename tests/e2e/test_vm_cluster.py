"""The foundation on real VMs: build the box, boot two nodes, prove SSH and the private
network, show a re-run changes nothing, destroy and show libvirt holds nothing.

The tests run in file order and share one cluster (they are the phases of one run).
"""

from __future__ import annotations

import json
import time

import pytest

from tests.e2e.harness import Cluster, record

pytestmark = pytest.mark.vm

NODES = {"node1": "192.168.60.11", "node2": "192.168.60.12"}


def test_box_build(cluster: Cluster) -> None:
    start = time.monotonic()
    # On the host's network: debootstrap downloads from Debian's mirror.
    cluster.kit("box.build", timeout=1800, host_network=True)
    record("box.build (debootstrap + image, or cached)", time.monotonic() - start)


def test_first_up_boots_and_provisions(cluster: Cluster) -> None:
    start = time.monotonic()
    proc = cluster.kit("up", timeout=3000)
    record("first `up` (boot 2 VMs + site.yml)", time.monotonic() - start)
    summary = json.loads((cluster.state_dir / "last-run.json").read_text())
    for phase in summary["phases"]:
        record(f"  first up: {phase['name']}", phase["seconds"])
    assert set(summary["recap"]) == set(NODES)
    assert all(r["failed"] == 0 and r["unreachable"] == 0 for r in summary["recap"].values())
    assert "phase times:" in proc.stdout


@pytest.mark.parametrize("node", sorted(NODES))
def test_node_answers_over_ssh(cluster: Cluster, node: str) -> None:
    proc = cluster.kit("ssh", node, "--command", "hostname; ip -o -4 addr show", timeout=300)
    lines = proc.stdout.splitlines()
    assert node in lines
    assert f"inet {NODES[node]}/24" in proc.stdout


@pytest.mark.parametrize(("src", "dst"), [("node1", "node2"), ("node2", "node1")])
def test_nodes_reach_each_other_on_the_private_network(cluster: Cluster, src: str, dst: str) -> None:
    # As the vagrant user, as a student would: the box allows unprivileged ICMP.
    proc = cluster.kit("ssh", src, "--command", f"ping -c 3 -W 5 {NODES[dst]}", timeout=300)
    assert "3 received" in proc.stdout or " 0% packet loss" in proc.stdout


def test_status_shows_both_running(cluster: Cluster) -> None:
    proc = cluster.kit("status", timeout=300)
    assert proc.stdout.count("running") == 2


def test_second_up_changes_nothing(cluster: Cluster) -> None:
    first = json.loads((cluster.state_dir / "last-run.json").read_text())
    start = time.monotonic()
    cluster.kit("up", timeout=3000)
    again = time.monotonic() - start
    record("second `up` (no change)", again)
    summary = json.loads((cluster.state_dir / "last-run.json").read_text())
    assert summary["changed"] == 0, summary["recap"]
    first_total = sum(p["seconds"] for p in first["phases"])
    record(f"  second up / first up = {again / first_total:.0%}", None)


def test_destroy_leaves_no_domain_volume_or_network(cluster: Cluster) -> None:
    start = time.monotonic()
    proc = cluster.kit("destroy", "--yes", "--box-volume", timeout=900)
    record("destroy", time.monotonic() - start)
    assert "libvirt holds no domain, network or volume of kitci" in proc.stdout
    domains = [d for d in cluster.virsh("list", "--all", "--name").split() if d]
    networks = [n for n in cluster.virsh("net-list", "--all", "--name").split() if n and n != "default"]
    volumes = cluster.virsh("vol-list", "default").splitlines()[2:]
    assert domains == []
    assert networks == []
    assert [v for v in volumes if v.strip()] == []
