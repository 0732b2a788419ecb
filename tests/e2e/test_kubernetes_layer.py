"""End-to-end suite of the Kubernetes layer (marker `k8s`; `./kit test.e2e`).

It needs a connected machine: the artifact cache must hold the upstream Kubernetes
binaries, manifests and images (`LABKIT_CONFIG=tests/e2e/k8s-cluster.yml ./kit
cache.fetch` fetches and pins them; the suite itself never reaches upstream). Without them it is skipped with the reason printed; nothing here
stands in for Kubernetes. It boots tests/e2e/k8s-cluster.yml with `./kit up` and checks
what a student relies on: nodes Ready on their private addresses, DNS from a pod,
pod-to-pod traffic across nodes, a NodePort reached from the host, metrics-server, a
bound PVC, a second `./kit up` that changes nothing, and lab 03's guide walked as written.
"""

from __future__ import annotations

import json
import time
import urllib.request
from typing import Any

import pytest
import yaml

from tests.e2e.connected import CONFIG, wait_for
from tests.e2e.harness import ROOT, Cluster, record, walk_lab

pytestmark = pytest.mark.k8s
PROBES = ROOT / "tests/e2e/k8s/probes.yaml"


def test_every_node_is_ready_on_its_private_address(api: Any) -> None:
    wanted = {n["name"]: n.get("ip") for n in yaml.safe_load(CONFIG.read_text())["nodes"]}
    nodes = api.CoreV1Api().list_node().items
    assert sorted(n.metadata.name for n in nodes) == sorted(wanted)
    for n in nodes:
        assert any(c.type == "Ready" and c.status == "True" for c in n.status.conditions), n.metadata.name
        internal = [a.address for a in n.status.addresses if a.type == "InternalIP"]
        assert internal and internal[0].startswith("192.168.62."), (n.metadata.name, internal)


def test_probes_run_dns_resolves_and_pods_reach_each_other_across_nodes(api: Any) -> None:
    from kubernetes import utils

    core = api.CoreV1Api()
    utils.create_from_yaml(api.ApiClient(), yaml_objects=list(yaml.safe_load_all(PROBES.read_text())))
    wait_for("web pod ready", lambda: all(c.ready for c in core.read_namespaced_pod("web", "labkit-e2e").status.container_statuses or [False]))
    assert (
        wait_for(
            "dns pod done",
            lambda: core.read_namespaced_pod("dns", "labkit-e2e").status.phase in ("Succeeded", "Failed") and core.read_namespaced_pod("dns", "labkit-e2e").status.phase,
        )
        == "Succeeded"
    )
    web_ip = core.read_namespaced_pod("web", "labkit-e2e").status.pod_ip
    client_pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "cross-node", "namespace": "labkit-e2e"},
        "spec": {
            "nodeName": "worker2",
            "restartPolicy": "Never",
            "containers": [{"name": "wget", "image": "docker.io/library/busybox:1.37.0", "command": ["wget", "-qO-", f"http://{web_ip}:8080/"]}],
        },
    }
    core.create_namespaced_pod("labkit-e2e", client_pod)
    phase = wait_for("cross-node pod done", lambda: (p := core.read_namespaced_pod("cross-node", "labkit-e2e").status.phase) in ("Succeeded", "Failed") and p)
    assert phase == "Succeeded"
    assert "labkit-e2e" in core.read_namespaced_pod_log("cross-node", "labkit-e2e")


def test_a_nodeport_answers_from_the_host(api: Any) -> None:
    worker2 = next(n for n in yaml.safe_load(CONFIG.read_text())["nodes"] if n["name"] == "worker2")
    ip = worker2.get("ip") or "192.168.62.13"
    body = wait_for("NodePort 30080", lambda: urllib.request.urlopen(f"http://{ip}:30080/", timeout=5).read().decode())
    assert "labkit-e2e" in body


def test_metrics_server_answers(api: Any) -> None:
    metrics = wait_for("node metrics", lambda: api.CustomObjectsApi().list_cluster_custom_object("metrics.k8s.io", "v1beta1", "nodes")["items"], timeout=240)
    assert len(metrics) == 3


def test_a_pvc_binds_on_the_default_storage_class(api: Any) -> None:
    core = api.CoreV1Api()
    assert wait_for("PVC bound", lambda: core.read_namespaced_persistent_volume_claim("data", "labkit-e2e").status.phase == "Bound")
    assert wait_for("writer done", lambda: core.read_namespaced_pod("writer", "labkit-e2e").status.phase == "Succeeded")


def test_a_second_up_changes_nothing(k8s: Cluster, api: Any) -> None:
    start = time.monotonic()
    k8s.kit("up", timeout=3600)
    record("k8s: second `up` (no change)", time.monotonic() - start)
    summary = json.loads((k8s.state_dir / "last-run.json").read_text())
    assert summary["changed"] == 0, summary["recap"]


def test_lab03_guide_runs_as_written_each_check_failing_before_its_step(k8s: Cluster, api: Any) -> None:
    """Lab 03 as a student walks it: after lab.start every check fails; `lab.walk` runs the
    guide's sh blocks step by step on the control plane (as user vagrant) and holds each
    step to its checks, failing before it and passing after it; after lab.reset every
    check fails again."""
    k8s.kit("lab.start", "03", timeout=1200)
    assert k8s.kit("lab.check", "03", check=False).returncode != 0
    walk_lab(k8s, "03")
    start = time.monotonic()
    k8s.kit("lab.check", "03")
    record("k8s: lab 03 check (all pass)", time.monotonic() - start)
    start = time.monotonic()
    k8s.kit("lab.reset", "03", timeout=1200)
    record("k8s: lab 03 reset (snapshot restore)", time.monotonic() - start)
    assert k8s.kit("lab.check", "03", check=False).returncode != 0
