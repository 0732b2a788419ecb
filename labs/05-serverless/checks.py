"""Lab 05 checks: the Knative objects through the Kubernetes API (`nodes.api(path)`),
and the measurements the steps leave on the control plane (testinfra)."""

import datetime
import re

from labkit.labs.discovery import check, why

DIR = "/home/vagrant/lab05"
SERVING = "/apis/serving.knative.dev/v1/namespaces/lab05"
KSVC = f"{SERVING}/services/hello"
WARM = f"{SERVING}/services/hello-warm"
CPU = f"{SERVING}/services/cpu"
REVISIONS = f"{SERVING}/revisions?labelSelector=serving.knative.dev%2Fservice%3Dhello"
PING = "/apis/sources.knative.dev/v1/namespaces/lab05/pingsources/ping"
# The Deployment controller's record of each scaling, kept by the API server for an hour
# (kube-apiserver --event-ttl): "Scaled up replica set cpu-00001-deployment-… from 1 to 4".
SCALINGS = "/api/v1/namespaces/lab05/events?fieldSelector=reason%3DScalingReplicaSet"
# The autoscaler's window (stable-window) and the grace period before the last pod goes
# (scale-to-zero-grace-period), as the kit configures Knative (roles/knative).
IDLE_TO_ZERO_S = 60 + 30


def _ready(obj):
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in (obj.get("status") or {}).get("conditions") or [])


def _service(nodes, path=KSVC):
    ksvc = nodes.api(path)
    assert ksvc is not None, why("there is no Knative Service {name} in namespace lab05", name=path.rsplit("/", 1)[-1])
    return ksvc


def _annotations(ksvc):
    return ((ksvc.get("spec") or {}).get("template") or {}).get("metadata", {}).get("annotations") or {}


def _image(ksvc):
    containers = ((ksvc.get("spec") or {}).get("template") or {}).get("spec", {}).get("containers") or [{}]
    return containers[0].get("image", "")


def _timestamp(text):
    return datetime.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def _number(annotations, key, default):
    value = annotations.get(f"autoscaling.knative.dev/{key}", default)
    try:
        return float(value)
    except (TypeError, ValueError):
        raise AssertionError(why("the annotation autoscaling.knative.dev/{key} is {value!r}, not a number", key=key, value=value)) from None


def _record(name, text, keys):
    """The `key NUMBER` lines of a record the steps write (the last of each); says which is missing."""
    found = dict(re.findall(r"^(\w+)\s+([0-9.]+)\s*$", text, re.MULTILINE))
    missing = [k for k in keys if k not in found]
    assert not missing, why("{name} has no line `{key} NUMBER`", name=name, key=missing[0])
    return {k: float(found[k]) for k in keys}


@check("function_ready", hint="`kubectl apply -f hello.yaml` (step 1), then `kubectl -n lab05 get ksvc hello` until READY is True.")
def function_ready(nodes):
    ksvc = _service(nodes)
    assert _ready(ksvc), "the Service hello is not Ready: `kubectl -n lab05 describe ksvc hello`"
    url = (ksvc.get("status") or {}).get("url", "")
    assert url.endswith(".lab05.knative.internal"), why("its URL is {url!r}: the kit's domain is knative.internal", url=url)


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
        assert zero.mtime.timestamp() > _timestamp(created), "zero.txt is older than the function hello: list the pods after deploying it and waiting a minute"


@check("cold_start_measured", hint="Time a request from zero and one right after into ~/lab05/cold-start.txt: `cold SECONDS` and `warm SECONDS` (step 3).")
def cold_start_measured(nodes):
    record = nodes.first.file(f"{DIR}/cold-start.txt")
    assert record.exists, "~/lab05/cold-start.txt does not exist yet"
    times = dict(re.findall(r"^(cold|warm)\s+([0-9.]+)\s*$", record.content_string, re.MULTILINE))
    assert {"cold", "warm"} <= set(times), "cold-start.txt needs a line `cold SECONDS` and a line `warm SECONDS`"
    cold, warm = float(times["cold"]), float(times["warm"])
    assert cold > warm, why("the cold request ({cold} s) should take longer than the warm one ({warm} s): was the function at zero?", cold=cold, warm=warm)


@check(
    "kept_warm",
    hint="`kubectl apply -f hello-warm.yaml` (step 4): min-scale 1 keeps a pod; after two idle minutes, time a call into ~/lab05/warm.txt as `warm SECONDS`.",
)
def kept_warm(nodes):
    ksvc = _service(nodes, WARM)
    assert "samples/hello:" in _image(ksvc), why("hello-warm runs {image!r}: it should be the same function as hello, to compare their calls", image=_image(ksvc))
    floor = _number(_annotations(ksvc), "min-scale", "0")
    assert floor >= 1, why('hello-warm\'s min-scale is {floor:g}: at 0 it scales to zero and pays the cold start like hello; set it to "1"', floor=floor)
    assert _ready(ksvc), "the Service hello-warm is not Ready: `kubectl -n lab05 describe ksvc hello-warm`"
    name = (ksvc.get("status") or {}).get("latestReadyRevisionName")
    revision = nodes.api(f"{SERVING}/revisions/{name}") if name else None
    assert revision is not None, "hello-warm has no ready revision yet"
    replicas = (revision.get("status") or {}).get("actualReplicas") or 0
    assert replicas >= 1, why("hello-warm's revision {name} has {replicas} pods: min-scale 1 should keep one all the time", name=name, replicas=replicas)
    record = nodes.first.file(f"{DIR}/warm.txt")
    assert record.exists, "~/lab05/warm.txt does not exist yet"
    warm = _record("warm.txt", record.content_string, ["warm"])["warm"]
    idle = record.mtime.timestamp() - _timestamp(ksvc["metadata"]["creationTimestamp"])
    assert idle >= IDLE_TO_ZERO_S, why(
        "warm.txt was written {idle:.0f} s after hello-warm was created: any new function is warm then. Wait past the"
        " {idle_to_zero} s after which a min-scale 0 function is at zero (sleep 120), then time the call",
        idle=idle,
        idle_to_zero=IDLE_TO_ZERO_S,
    )
    cold_record = nodes.first.file(f"{DIR}/cold-start.txt")
    assert cold_record.exists, "~/lab05/cold-start.txt does not exist: measure hello's cold start first (step 3)"
    cold = _record("cold-start.txt", cold_record.content_string, ["cold"])["cold"]
    assert warm < cold, why("the call to hello-warm ({warm} s) should be faster than hello's cold start ({cold} s): did it have a pod?", warm=warm, cold=cold)


@check("traffic_split", hint="`kubectl apply -f hello-split.yaml` (step 5): a second revision, 50/50 between hello-00001 and the latest.")
def traffic_split(nodes):
    ksvc = _service(nodes)
    revisions = nodes.api(REVISIONS)["items"]
    assert len(revisions) >= 2, why("{count} revision(s): change the template to make a second", count=len(revisions))
    traffic = (ksvc.get("status") or {}).get("traffic") or []
    targets = {t.get("revisionName") for t in traffic if t.get("percent", 0) > 0}
    assert len(targets) >= 2, "the traffic goes to one revision only: split it between two"
    assert sum(t.get("percent", 0) for t in traffic) == 100, "the traffic percentages must add up to 100"
    assert _ready(ksvc), "the Service is not Ready after the split"


def _scaled_to(event):
    """The most pods a Deployment had in one ScalingReplicaSet event ("… from 1 to 4")."""
    return max((int(n) for n in re.findall(r"\b(?:from|to) (\d+)\b", event.get("message") or "")), default=0)


@check(
    "scaled_under_load",
    hint="`kubectl apply -f cpu.yaml`, then `sh load.sh cpu.lab05.knative.internal 8 120 | tee ~/lab05/autoscale.txt` (step 6).",
)
def scaled_under_load(nodes):
    ksvc = _service(nodes, CPU)
    assert "samples/cpu:" in _image(ksvc), why("cpu runs {image!r}: deploy the kit's cpu sample (cpu.yaml)", image=_image(ksvc))
    annotations = _annotations(ksvc)
    assert "autoscaling.knative.dev/target" in annotations, "cpu has no autoscaling.knative.dev/target: at the default of 100 requests per pod, 8 never need a second pod"
    ceiling = _number(annotations, "max-scale", "0")
    assert ceiling >= 2, "cpu needs a max-scale of at least 2 (cpu.yaml: 4), so the autoscaler may add pods, and no more than a laptop holds"
    for floor in ("min-scale", "initial-scale"):
        pods = _number(annotations, floor, "0")
        assert pods < 2, why("cpu's {floor} is {pods:g}: that many pods come whatever the load, so they prove no autoscaling. Leave it at 0", floor=floor, pods=pods)
    assert _ready(ksvc), "the Service cpu is not Ready: `kubectl -n lab05 describe ksvc cpu`"
    record = nodes.first.file(f"{DIR}/autoscale.txt")
    assert record.exists, "~/lab05/autoscale.txt does not exist yet"
    assert record.mtime.timestamp() > _timestamp(ksvc["metadata"]["creationTimestamp"]), "autoscale.txt is older than the Service cpu: load it after deploying it"
    found = _record("autoscale.txt", record.content_string, ["requests", "peak"])
    assert found["requests"] > 0, "autoscale.txt counts no answered request: was the function reachable?"
    assert len(re.findall(r"^pods \d+ \d+$", record.content_string, re.MULTILINE)) >= 2, "autoscale.txt should hold load.sh's `pods` lines: record its whole output"
    peak = found["peak"]
    assert peak >= 2, why("at most {peak:g} pod was Ready under load: the autoscaler added none (is the target 1? were 8 requests in flight?)", peak=peak)
    assert peak <= ceiling, why("a peak of {peak:g} pods is more than cpu's max-scale of {ceiling:g} allows: record what load.sh counted", peak=peak, ceiling=ceiling)
    # While the API server still holds the Deployment's scaling events, they must agree.
    events = [e for e in (nodes.api(SCALINGS) or {}).get("items", []) if re.fullmatch(r"cpu-\d{5}-deployment", (e.get("involvedObject") or {}).get("name", ""))]
    if events:
        most = max(_scaled_to(e) for e in events)
        assert most >= 2, why("the cluster's events say cpu's Deployment never had more than {most} pod(s): put it under load (step 6) and record that run", most=most)


@check(
    "ping_source_ready",
    hint="Knative Eventing is needed (addons.knative_eventing: true, then ./kit up); `kubectl apply -f ping.yaml` (step 7).",
)
def ping_source_ready(nodes):
    ping = nodes.api(PING)
    assert ping is not None, "there is no PingSource ping in lab05 (is Knative Eventing installed?)"
    sink = ping["spec"].get("sink", {}).get("ref", {})
    assert sink.get("kind") == "Service" and sink.get("name") == "hello", "the PingSource should deliver to the Knative Service hello"
    assert _ready(ping), "the PingSource is not Ready: `kubectl -n lab05 describe pingsource ping`"
