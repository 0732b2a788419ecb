"""Lab 04's checks against recorded API responses (Kubernetes and Istio objects).

Uses lab 03's test double (FakeCluster): every check fails on a fresh cluster, passes on
a solved one, and catches its own mistake. Kubernetes objects of the recordings are
validated against the 1.36 schemas.
"""

from __future__ import annotations

from typing import Any

import pytest

from labkit.labs import discovery
from tests.unit import recorded
from tests.unit.doubles import FakeFile
from tests.unit.k8s_schemas import k8s_errors
from tests.unit.recorded import FakeCluster

DIR = "/home/vagrant/lab04"
PODS = "/api/v1/namespaces/lab04/pods?labelSelector=app%3Dweb"
VS = "/apis/networking.istio.io/v1/namespaces/lab04/virtualservices/web"
PEER = "/apis/security.istio.io/v1/namespaces/lab04/peerauthentications/default"
FILES = {
    f"{DIR}/plaintext.txt": "wget: error getting response: Connection reset by peer\n",
    f"{DIR}/canary.txt": "     91 v1\n      9 v2\n",
    f"{DIR}/fault.txt": "HTTP/1.1 200\nHTTP/1.1 503\n" + "HTTP/1.1 200\n" * 12 + "HTTP/1.1 503\n" * 6,
}
LAB = discovery.find(discovery.discover(), "04")
CHECKS = [c for step in LAB.spec.steps for c in step.checks]


RECORDED = recorded.RecordedLab("04", FILES)
recording, solved, failing = RECORDED.recording, RECORDED.solved, RECORDED.failing


def test_kubernetes_objects_of_the_recordings_are_valid() -> None:
    for name in ("fresh", "solved"):
        for path, doc in recording(name).items():
            if doc["apiVersion"] in ("v1", "apps/v1"):
                assert k8s_errors(doc) == [], path


def test_every_check_fails_on_a_fresh_cluster() -> None:
    assert failing(FakeCluster(recording("fresh"))) == set(CHECKS)


def test_every_check_passes_on_the_solved_cluster() -> None:
    assert failing(solved()) == set()


def _no_sidecar(pods: dict[str, Any]) -> None:
    pods["items"][1]["spec"]["initContainers"] = []


def _permissive(peer: dict[str, Any]) -> None:
    peer["spec"]["mtls"]["mode"] = "PERMISSIVE"


def _even_split(vs: dict[str, Any]) -> None:
    for r in vs["spec"]["http"][0]["route"]:
        r["weight"] = 50


def _no_fault(vs: dict[str, Any]) -> None:
    del vs["spec"]["http"][0]["fault"]


@pytest.mark.parametrize(
    ("path", "change", "expected"),
    [
        (PODS, _no_sidecar, {"sidecar_injected"}),
        (PEER, _permissive, {"mtls_strict"}),
        (VS, _even_split, {"canary_split"}),
        (VS, _no_fault, {"fault_and_retries"}),
    ],
)
def test_each_check_catches_its_own_mistake(path: str, change: Any, expected: set[str]) -> None:
    cluster = solved()
    change(cluster.responses[path])
    assert failing(cluster) == expected


@pytest.mark.parametrize(
    ("file", "content", "expected"),
    [
        ("plaintext.txt", "web v1 on web-v1-5c9f8d7b6-1k2x\n", "mtls_strict"),
        # Errors that are not mTLS refusing plaintext: a wrong name, a timeout, a made-up line.
        ("plaintext.txt", "wget: bad address 'web.lab4.svc.cluster.local'\n", "mtls_strict"),
        ("plaintext.txt", "wget: download timed out\n", "mtls_strict"),
        ("plaintext.txt", "error\n", "mtls_strict"),
        ("canary.txt", "     50 v1\n     50 v2\n", "canary_split"),
        ("canary.txt", "      9 v2\n", "canary_split"),
        ("fault.txt", "HTTP/1.1 200\n" * 20, "fault_and_retries"),
    ],
)
def test_what_the_student_measured_is_checked(file: str, content: str, expected: str) -> None:
    cluster = solved()
    cluster.first.files[f"{DIR}/{file}"] = FakeFile(exists=True, content_string=content)
    assert failing(cluster) == {expected}
