"""Lab 03's checks against recorded API responses of a fresh and of a solved cluster.

`FakeCluster` is a test double of what the checks see: `api(path)` answers from a
recording (tests/unit/data/lab03/*.yaml, validated against the 1.36 schemas here), and
the control plane's files are set by the test. Every check fails on the fresh cluster
and passes on the solved one; the variants show each check catching its own mistake.
The e2e suite walks lab 03's guide (`lab.walk 03`) and runs `lab.check 03` on a real cluster.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from labkit.labs import checks as labs_checks
from labkit.labs import discovery
from tests.unit.doubles import FakeFile, FakeHost
from tests.unit.k8s_schemas import k8s_errors
from tests.unit.recorded import FakeCluster

DATA = Path(__file__).parents[1] / "data" / "lab03"
DIR = "/home/vagrant/lab03"
SOLVED_FILES = {
    f"{DIR}/static-pods.txt": "etcd.yaml\nkube-apiserver.yaml\nkube-controller-manager.yaml\nkube-scheduler.yaml\n",
    f"{DIR}/etcd-keys.txt": "/registry/namespaces/default\n/registry/namespaces/kube-system\n/registry/namespaces/lab03\n",
    f"{DIR}/deleted-pod.txt": "web-6d4cf56db6-zz9k2\n",
    f"{DIR}/from-client.txt": "web v1 on web-6d4cf56db6-ax0q7\n",
}


def recording(name: str) -> dict[str, Any]:
    return yaml.safe_load((DATA / f"{name}.yaml").read_text())


def solved() -> FakeCluster:
    host = FakeHost(files={path: FakeFile(exists=True, content_string=text) for path, text in SOLVED_FILES.items()})
    return FakeCluster(recording("solved"), host)


LAB = discovery.find(discovery.discover(), "03")
CHECKS = [c for step in LAB.spec.steps for c in step.checks]


def outcome(cluster: FakeCluster) -> dict[str, bool]:
    results = labs_checks.run_checks(LAB, cluster)
    crashed = [f"{r.id}: {r.detail}" for r in results if not r.ok and r.detail.split(":")[0].endswith(("Error", "Exception"))]
    assert crashed == [], "a check must fail with its own message, not crash"
    return {r.id: r.ok for r in results}


@pytest.mark.parametrize("name", ["fresh", "solved"])
def test_the_recordings_are_valid_kubernetes_1_36_responses(name: str) -> None:
    for path, doc in recording(name).items():
        assert k8s_errors(doc) == [], path


def test_every_check_fails_on_a_fresh_cluster() -> None:
    results = outcome(FakeCluster(recording("fresh")))
    assert results == dict.fromkeys(CHECKS, False)


def test_every_check_passes_on_the_solved_cluster() -> None:
    assert outcome(solved()) == dict.fromkeys(CHECKS, True)


def test_hints_say_what_to_do() -> None:
    for result in labs_checks.run_checks(LAB, FakeCluster(recording("fresh"))):
        assert result.hint and ("kubectl" in result.hint or "~/lab03" in result.hint), result.id
        assert result.detail, result.id


def mutate(cluster: FakeCluster, path: str, fn: Any) -> FakeCluster:
    fn(cluster.responses[path])
    return cluster


DEPLOY = "/apis/apps/v1/namespaces/lab03/deployments/web"
PODS = "/api/v1/namespaces/lab03/pods?labelSelector=app%3Dweb"


def _three_available(d: dict[str, Any]) -> None:
    d["status"]["availableReplicas"] = 3


def _static_pod_as_plain_pod(p: dict[str, Any]) -> None:
    del p["metadata"]["annotations"]["kubernetes.io/config.mirror"]


def _pod_on_drained_node(pods: dict[str, Any]) -> None:
    pods["items"][0]["spec"]["nodeName"] = "worker2"


def _not_drained(nodes: dict[str, Any]) -> None:
    for n in nodes["items"]:
        n["spec"].pop("unschedulable", None)


def _still_v1(d: dict[str, Any]) -> None:
    d["spec"]["template"]["spec"]["containers"][0]["env"] = [{"name": "VERSION", "value": "v1"}]


def _rollout_in_progress(d: dict[str, Any]) -> None:
    d["status"]["updatedReplicas"] = 2


def _unseen_change(d: dict[str, Any]) -> None:
    d["metadata"]["generation"] = 4


def _no_ready_endpoints(slices: dict[str, Any]) -> None:
    for e in slices["items"][0]["endpoints"]:
        e["conditions"]["ready"] = False


@pytest.mark.parametrize(
    ("path", "change", "failing"),
    [
        (DEPLOY, _three_available, {"web_scaled", "pod_replaced", "node_failure_survived", "rolled_out_v2"}),
        ("/api/v1/namespaces/kube-system/pods/etcd-cp1", _static_pod_as_plain_pod, {"control_plane_static_pods"}),
        (PODS, _pod_on_drained_node, {"node_failure_survived"}),
        ("/api/v1/nodes", _not_drained, {"node_failure_survived"}),
        (DEPLOY, _still_v1, {"rolled_out_v2"}),
        (DEPLOY, _rollout_in_progress, {"rolled_out_v2"}),
        (DEPLOY, _unseen_change, {"web_scaled", "pod_replaced", "node_failure_survived", "rolled_out_v2"}),
        ("/apis/discovery.k8s.io/v1/namespaces/lab03/endpointslices?labelSelector=kubernetes.io%2Fservice-name%3Dweb", _no_ready_endpoints, {"service_answers_by_name"}),
    ],
)
def test_each_check_catches_its_own_mistake(path: str, change: Any, failing: set[str]) -> None:
    results = outcome(mutate(solved(), path, change))
    assert {c for c, ok in results.items() if not ok} == failing


def test_a_pod_that_was_not_deleted_is_caught() -> None:
    cluster = solved()
    name = cluster.responses[PODS]["items"][0]["metadata"]["name"]
    cluster.first.files[f"{DIR}/deleted-pod.txt"] = FakeFile(exists=True, content_string=name + "\n")
    assert {c for c, ok in outcome(cluster).items() if not ok} == {"pod_replaced"}


def test_the_etcd_listing_must_come_from_etcd() -> None:
    cluster = solved()
    cluster.first.files[f"{DIR}/etcd-keys.txt"] = FakeFile(exists=True, content_string="default\nkube-system\n")  # `kubectl get ns`, not etcd
    assert {c for c, ok in outcome(cluster).items() if not ok} == {"etcd_keys_read"}


def _cordoned_only(pods: dict[str, Any]) -> None:
    """`kubectl cordon` instead of `kubectl drain`: no pod was evicted and recreated."""
    for p in pods["items"]:
        p["metadata"]["creationTimestamp"] = "2026-11-29T18:01:00Z"


def test_a_cordon_is_not_a_drain() -> None:
    results = outcome(mutate(solved(), PODS, _cordoned_only))
    assert {c for c, ok in results.items() if not ok} == {"node_failure_survived"}
    detail = next(r.detail for r in labs_checks.run_checks(LAB, mutate(solved(), PODS, _cordoned_only)) if r.id == "node_failure_survived")
    assert "a cordon stops new pods, `kubectl drain` also evicts the running ones" in detail


@pytest.mark.parametrize("made_up", ["web-1", "web-pod", "web-6d4cf56db6", "web-0000000000-abcde", "web-6d4cf56db6-zz9k2x"])
def test_a_made_up_pod_name_is_not_a_deleted_pod(made_up: str) -> None:
    cluster = solved()
    cluster.first.files[f"{DIR}/deleted-pod.txt"] = FakeFile(exists=True, content_string=made_up + "\n")
    assert {c for c, ok in outcome(cluster).items() if not ok} == {"pod_replaced"}
