"""Lab 05's checks against recorded API responses (Knative Serving and Eventing objects).

Uses lab 03's test double (FakeCluster: recorded `api(path)` answers, fake files): every
check fails on a fresh cluster, passes on a solved one, and catches its own mistake.
"""

from __future__ import annotations

from typing import Any

import pytest

from labkit import labs
from tests.unit import recorded
from tests.unit.recorded import FakeCluster
from tests.unit.test_labs import FakeFile

DIR = "/home/vagrant/lab05"
KSVC = "/apis/serving.knative.dev/v1/namespaces/lab05/services/hello"
PING = "/apis/sources.knative.dev/v1/namespaces/lab05/pingsources/ping"
REVISIONS = "/apis/serving.knative.dev/v1/namespaces/lab05/revisions?labelSelector=serving.knative.dev%2Fservice%3Dhello"
FILES = {f"{DIR}/zero.txt": "No resources found in lab05 namespace.\n", f"{DIR}/cold-start.txt": "cold 4.812\nwarm 0.009\n"}
LAB = labs.find(labs.discover(), "05")
CHECKS = [c for step in LAB.spec.steps for c in step.checks]


RECORDED = recorded.RecordedLab("05", FILES)
recording, solved, failing = RECORDED.recording, RECORDED.solved, RECORDED.failing


def test_every_check_fails_on_a_fresh_cluster() -> None:
    assert failing(FakeCluster(recording("fresh"))) == set(CHECKS)


def test_every_check_passes_on_the_solved_cluster() -> None:
    assert failing(solved()) == set()


def test_the_recordings_are_the_objects_the_checks_ask_for() -> None:
    solved_data = recording("solved")
    assert (solved_data[KSVC]["apiVersion"], solved_data[KSVC]["kind"]) == ("serving.knative.dev/v1", "Service")
    assert (solved_data[PING]["apiVersion"], solved_data[PING]["kind"]) == ("sources.knative.dev/v1", "PingSource")
    assert solved_data[REVISIONS]["kind"] == "RevisionList"


def _not_ready(ksvc: dict[str, Any]) -> None:
    for c in ksvc["status"]["conditions"]:
        if c["type"] == "Ready":
            c["status"] = "False"


def _min_scale_one(ksvc: dict[str, Any]) -> None:
    ksvc["spec"]["template"]["metadata"]["annotations"]["autoscaling.knative.dev/min-scale"] = "1"


def _all_to_one(ksvc: dict[str, Any]) -> None:
    ksvc["status"]["traffic"] = [{"revisionName": "hello-00002", "percent": 100, "latestRevision": True}]


def _wrong_sink(ping: dict[str, Any]) -> None:
    ping["spec"]["sink"]["ref"]["name"] = "other"


def _one_revision(revisions: dict[str, Any]) -> None:
    revisions["items"] = revisions["items"][:1]


@pytest.mark.parametrize(
    ("path", "change", "expected"),
    [
        (KSVC, _not_ready, {"function_ready", "traffic_split"}),
        (KSVC, _min_scale_one, {"scaled_to_zero"}),
        (KSVC, _all_to_one, {"traffic_split"}),
        (REVISIONS, _one_revision, {"traffic_split"}),
        (PING, _wrong_sink, {"ping_source_ready"}),
    ],
)
def test_each_check_catches_its_own_mistake(path: str, change: Any, expected: set[str]) -> None:
    cluster = solved()
    change(cluster.responses[path])
    assert failing(cluster) == expected


def test_a_cold_start_faster_than_the_warm_request_is_caught() -> None:
    cluster = solved()
    cluster.first.files[f"{DIR}/cold-start.txt"] = FakeFile(exists=True, content_string="cold 0.010\nwarm 0.009\ncold 0.008\n")
    assert failing(cluster) == {"cold_start_measured"}


def test_without_eventing_the_event_step_fails_with_its_hint() -> None:
    cluster = solved()
    del cluster.responses[PING]
    results = {r.id: r for r in labs.run_checks(LAB, cluster)}
    assert not results["ping_source_ready"].ok
    assert "addons.knative_eventing" in results["ping_source_ready"].hint


def test_a_listing_taken_before_the_function_existed_is_not_scale_to_zero() -> None:
    import datetime

    cluster = solved()
    cluster.first.files[f"{DIR}/zero.txt"] = FakeFile(exists=True, content_string=FILES[f"{DIR}/zero.txt"], mtime=datetime.datetime(2026, 11, 29, 17, 50, tzinfo=datetime.UTC))
    assert failing(cluster) == {"scaled_to_zero"}
