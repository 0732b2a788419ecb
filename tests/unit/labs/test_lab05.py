"""Lab 05's checks against recorded API responses (Knative Serving and Eventing objects).

Uses lab 03's test double (FakeCluster: recorded `api(path)` answers, fake files): every
check fails on a fresh cluster, passes on a solved one, and catches its own mistake.
"""

from __future__ import annotations

from typing import Any

import pytest

from labkit.labs import checks as labs_checks
from labkit.labs import discovery
from tests.unit import recorded
from tests.unit.doubles import FakeFile
from tests.unit.recorded import FakeCluster

DIR = "/home/vagrant/lab05"
SERVING = "/apis/serving.knative.dev/v1/namespaces/lab05"
KSVC = f"{SERVING}/services/hello"
WARM = f"{SERVING}/services/hello-warm"
WARM_REVISION = f"{SERVING}/revisions/hello-warm-00001"
CPU = f"{SERVING}/services/cpu"
SCALINGS = "/api/v1/namespaces/lab05/events?fieldSelector=reason%3DScalingReplicaSet"
PING = "/apis/sources.knative.dev/v1/namespaces/lab05/pingsources/ping"
REVISIONS = f"{SERVING}/revisions?labelSelector=serving.knative.dev%2Fservice%3Dhello"
# load.sh's output as step 6 records it (cut short: it polls every 2 s for two minutes).
AUTOSCALE = "pods 0 1\npods 2 1\npods 4 2\npods 6 4\npods 8 4\npods 10 4\nrequests 512\nerrors 0\npeak 4\n"
FILES = {
    f"{DIR}/zero.txt": "No resources found in lab05 namespace.\n",
    f"{DIR}/cold-start.txt": "cold 4.812\nwarm 0.009\n",
    f"{DIR}/warm.txt": "warm 0.011\n",
    f"{DIR}/autoscale.txt": AUTOSCALE,
}
LAB = discovery.find(discovery.discover(), "05")
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
    assert [solved_data[path]["metadata"]["name"] for path in (WARM, WARM_REVISION, CPU)] == ["hello-warm", "hello-warm-00001", "cpu"]
    assert solved_data[SCALINGS]["kind"] == "EventList"


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


def _annotate(key: str, value: str) -> Any:
    def change(ksvc: dict[str, Any]) -> None:
        ksvc["spec"]["template"]["metadata"]["annotations"][f"autoscaling.knative.dev/{key}"] = value

    return change


def _unannotate(key: str) -> Any:
    def change(ksvc: dict[str, Any]) -> None:
        del ksvc["spec"]["template"]["metadata"]["annotations"][f"autoscaling.knative.dev/{key}"]

    return change


def _no_pod(revision: dict[str, Any]) -> None:
    revision["status"]["actualReplicas"] = 0


def _hello_image(ksvc: dict[str, Any]) -> None:
    ksvc["spec"]["template"]["spec"]["containers"][0]["image"] = "labkit.local/samples/hello:v1"


def _never_above_one(events: dict[str, Any]) -> None:
    events["items"] = [e for e in events["items"] if " to 4" not in e["message"] and "from 4" not in e["message"]]


@pytest.mark.parametrize(
    ("path", "change", "expected"),
    [
        (KSVC, _not_ready, {"function_ready", "traffic_split"}),
        (KSVC, _min_scale_one, {"scaled_to_zero"}),
        (KSVC, _all_to_one, {"traffic_split"}),
        (REVISIONS, _one_revision, {"traffic_split"}),
        (PING, _wrong_sink, {"ping_source_ready"}),
        # hello-warm without its floor scales to zero like hello; a floor with no pod is not kept warm
        (WARM, _annotate("min-scale", "0"), {"kept_warm"}),
        (WARM, _unannotate("min-scale"), {"kept_warm"}),
        (WARM_REVISION, _no_pod, {"kept_warm"}),
        (WARM, _not_ready, {"kept_warm"}),
        # pods forced by a floor, or by the initial scale, prove no autoscaling
        (CPU, _annotate("min-scale", "4"), {"scaled_under_load"}),
        (CPU, _annotate("initial-scale", "4"), {"scaled_under_load"}),
        # without a low target, or without a ceiling, or another function
        (CPU, _unannotate("target"), {"scaled_under_load"}),
        (CPU, _unannotate("max-scale"), {"scaled_under_load"}),
        (CPU, _hello_image, {"scaled_under_load"}),
        # the record says 4 pods, the Deployment controller's events say it never went past 1
        (SCALINGS, _never_above_one, {"scaled_under_load"}),
    ],
)
def test_each_check_catches_its_own_mistake(path: str, change: Any, expected: set[str]) -> None:
    cluster = solved()
    change(cluster.responses[path])
    assert failing(cluster) == expected


def test_a_cold_start_faster_than_the_warm_request_is_caught() -> None:
    cluster = solved()
    cluster.first.files[f"{DIR}/cold-start.txt"] = FakeFile(exists=True, content_string="cold 0.010\nwarm 0.009\ncold 0.008\n")
    assert failing(cluster) == {"cold_start_measured", "kept_warm"}  # nor is hello-warm's call faster than that


def test_without_eventing_the_event_step_fails_with_its_hint() -> None:
    cluster = solved()
    del cluster.responses[PING]
    results = {r.id: r for r in labs_checks.run_checks(LAB, cluster)}
    assert not results["ping_source_ready"].ok
    assert "addons.knative_eventing" in results["ping_source_ready"].hint


def test_a_listing_taken_before_the_function_existed_is_not_scale_to_zero() -> None:
    import datetime

    cluster = solved()
    cluster.first.files[f"{DIR}/zero.txt"] = FakeFile(exists=True, content_string=FILES[f"{DIR}/zero.txt"], mtime=datetime.datetime(2026, 11, 29, 17, 50, tzinfo=datetime.UTC))
    assert failing(cluster) == {"scaled_to_zero"}


def _file(cluster: FakeCluster, name: str, text: str, **kwargs: Any) -> None:
    cluster.first.files[f"{DIR}/{name}"] = FakeFile(exists=True, content_string=text, **kwargs)


def test_min_scale_one_on_hello_itself_is_caught_twice() -> None:
    """The cure put on the wrong function: hello can no longer scale to zero (lab 06 measures
    its cold start), and there is no warm copy beside it."""
    cluster = solved()
    _min_scale_one(cluster.responses[KSVC])
    del cluster.responses[WARM]
    assert failing(cluster) == {"scaled_to_zero", "kept_warm"}


def test_a_warm_call_right_after_the_deploy_proves_nothing() -> None:
    import datetime

    cluster = solved()  # hello-warm was created at 18:10:00; any new function is warm 30 s later
    _file(cluster, "warm.txt", FILES[f"{DIR}/warm.txt"], mtime=datetime.datetime(2026, 11, 29, 18, 10, 30, tzinfo=datetime.UTC))
    assert failing(cluster) == {"kept_warm"}


def test_a_warm_call_no_faster_than_the_cold_start_is_caught() -> None:
    cluster = solved()
    _file(cluster, "warm.txt", "warm 5.120\n")
    assert failing(cluster) == {"kept_warm"}
    del cluster.first.files[f"{DIR}/cold-start.txt"]
    _file(cluster, "warm.txt", FILES[f"{DIR}/warm.txt"])
    assert failing(cluster) == {"cold_start_measured", "kept_warm"}


def test_an_autoscale_record_typed_by_hand_without_the_service_is_caught() -> None:
    cluster = solved()
    del cluster.responses[CPU]
    del cluster.responses[SCALINGS]
    assert failing(cluster) == {"scaled_under_load"}


@pytest.mark.parametrize(
    "record",
    [
        AUTOSCALE.replace("peak 4", "peak 1"),  # the load never needed a second pod
        AUTOSCALE.replace("peak 4", "peak 9"),  # more than max-scale allows: a number typed by hand
        "requests 512\npeak 4\n",  # no pods counted: not load.sh's record
        AUTOSCALE.replace("requests 512", "requests 0"),  # every request failed
        AUTOSCALE.replace("peak 4\n", ""),
    ],
)
def test_an_autoscale_record_that_shows_no_autoscaling_is_caught(record: str) -> None:
    cluster = solved()
    _file(cluster, "autoscale.txt", record)
    assert failing(cluster) == {"scaled_under_load"}


def test_an_autoscale_record_older_than_the_service_is_caught() -> None:
    import datetime

    cluster = solved()  # cpu was created at 18:20:00
    _file(cluster, "autoscale.txt", AUTOSCALE, mtime=datetime.datetime(2026, 11, 29, 18, 15, tzinfo=datetime.UTC))
    assert failing(cluster) == {"scaled_under_load"}


def test_the_record_alone_stands_once_the_scaling_events_expired() -> None:
    """The API server keeps events for an hour: after that, the record is the evidence."""
    cluster = solved()
    cluster.responses[SCALINGS]["items"] = [e for e in cluster.responses[SCALINGS]["items"] if not e["involvedObject"]["name"].startswith("cpu-")]
    assert failing(cluster) == set()
