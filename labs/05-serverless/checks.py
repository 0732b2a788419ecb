"""Lab 05 checks: the Knative objects through the Kubernetes API (`nodes.api(path)`),
and the measurements the steps leave on the control plane (testinfra)."""

import datetime
import re

from labkit.labs import check

DIR = "/home/vagrant/lab05"
KSVC = "/apis/serving.knative.dev/v1/namespaces/lab05/services/hello"
REVISIONS = "/apis/serving.knative.dev/v1/namespaces/lab05/revisions?labelSelector=serving.knative.dev%2Fservice%3Dhello"
PING = "/apis/sources.knative.dev/v1/namespaces/lab05/pingsources/ping"


def _ready(obj):
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in (obj.get("status") or {}).get("conditions") or [])


def _service(nodes):
    ksvc = nodes.api(KSVC)
    assert ksvc is not None, "there is no Knative Service hello in namespace lab05"
    return ksvc


@check("function_ready", hint="`kubectl apply -f hello.yaml` (step 1), then `kubectl -n lab05 get ksvc hello` until READY is True.")
def function_ready(nodes):
    ksvc = _service(nodes)
    assert _ready(ksvc), "the Service hello is not Ready: `kubectl -n lab05 describe ksvc hello`"
    url = (ksvc.get("status") or {}).get("url", "")
    assert url.endswith(".lab05.knative.internal"), f"its URL is {url!r}: the kit's domain is knative.internal"


@check("scaled_to_zero", hint="Wait a minute without requests, then `kubectl -n lab05 get pods > ~/lab05/zero.txt 2>&1` (step 2).")
def scaled_to_zero(nodes):
    ksvc = _service(nodes)
    annotations = ksvc["spec"]["template"].get("metadata", {}).get("annotations", {})
    assert annotations.get("autoscaling.knative.dev/min-scale", "0") == "0", "min-scale is not 0: the function can never scale to zero"
    zero = nodes.first.file(f"{DIR}/zero.txt")
    assert zero.exists, "~/lab05/zero.txt does not exist yet"
    assert "No resources found" in zero.content_string, "zero.txt should show no pods in lab05 (scaled to zero)"
    # A listing taken before the function existed also says "No resources found".
    created = ksvc["metadata"].get("creationTimestamp")
    if created:
        deployed = datetime.datetime.fromisoformat(created.replace("Z", "+00:00")).timestamp()
        assert zero.mtime.timestamp() > deployed, "zero.txt is older than the function hello: list the pods after deploying it and waiting a minute"


@check("cold_start_measured", hint="Time a request from zero and one right after into ~/lab05/cold-start.txt: `cold SECONDS` and `warm SECONDS` (step 3).")
def cold_start_measured(nodes):
    record = nodes.first.file(f"{DIR}/cold-start.txt")
    assert record.exists, "~/lab05/cold-start.txt does not exist yet"
    times = dict(re.findall(r"^(cold|warm)\s+([0-9.]+)\s*$", record.content_string, re.MULTILINE))
    assert {"cold", "warm"} <= set(times), "cold-start.txt needs a line `cold SECONDS` and a line `warm SECONDS`"
    cold, warm = float(times["cold"]), float(times["warm"])
    assert cold > warm, f"the cold request ({cold} s) should take longer than the warm one ({warm} s): was the function at zero?"


@check("traffic_split", hint="`kubectl apply -f hello-split.yaml` (step 4): a second revision, 50/50 between hello-00001 and the latest.")
def traffic_split(nodes):
    ksvc = _service(nodes)
    revisions = nodes.api(REVISIONS)["items"]
    assert len(revisions) >= 2, f"{len(revisions)} revision(s): change the template to make a second"
    traffic = (ksvc.get("status") or {}).get("traffic") or []
    targets = {t.get("revisionName") for t in traffic if t.get("percent", 0) > 0}
    assert len(targets) >= 2, "the traffic goes to one revision only: split it between two"
    assert sum(t.get("percent", 0) for t in traffic) == 100, "the traffic percentages must add up to 100"
    assert _ready(ksvc), "the Service is not Ready after the split"


@check(
    "ping_source_ready",
    hint="Knative Eventing is needed (addons.knative_eventing: true, then ./kit up); `kubectl apply -f ping.yaml` (step 5).",
)
def ping_source_ready(nodes):
    ping = nodes.api(PING)
    assert ping is not None, "there is no PingSource ping in lab05 (is Knative Eventing installed?)"
    sink = ping["spec"].get("sink", {}).get("ref", {})
    assert sink.get("kind") == "Service" and sink.get("name") == "hello", "the PingSource should deliver to the Knative Service hello"
    assert _ready(ping), "the PingSource is not Ready: `kubectl -n lab05 describe pingsource ping`"
