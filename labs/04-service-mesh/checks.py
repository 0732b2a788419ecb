"""Lab 04 checks: the mesh's objects through the Kubernetes API (`nodes.api(path)`), and
what the student measured from inside and outside the mesh (files on the control plane)."""

import re

from labkit.labs.discovery import check, why

DIR = "/home/vagrant/lab04"
NS = "/api/v1/namespaces/lab04"
PODS = "/api/v1/namespaces/lab04/pods?labelSelector=app%3Dweb"
PEER = "/apis/security.istio.io/v1/namespaces/lab04/peerauthentications/default"
DR = "/apis/networking.istio.io/v1/namespaces/lab04/destinationrules/web"
VS = "/apis/networking.istio.io/v1/namespaces/lab04/virtualservices/web"


def _counts(text):
    """`uniq -c` output: one `COUNT VERSION` line per version."""
    return {version: int(count) for count, version in re.findall(r"^\s*(\d+)\s+(v[12])\s*$", text, re.MULTILINE)}


@check("sidecar_injected", hint="`kubectl apply -f web.yaml` (step 1): its namespace has istio-injection=enabled; `kubectl -n lab04 get pods` shows 2/2.")
def sidecar_injected(nodes):
    ns = nodes.api(NS)
    assert ns is not None, "there is no namespace lab04"
    assert ns["metadata"].get("labels", {}).get("istio-injection") == "enabled", "lab04 is not labelled istio-injection=enabled"
    pods = [p for p in nodes.api(PODS)["items"] if p["status"].get("phase") == "Running"]
    assert len(pods) >= 2, why("{running} web pod(s) running, not 2 (v1 and v2)", running=len(pods))
    for pod in pods:
        names = [c["name"] for c in pod["spec"].get("containers", []) + pod["spec"].get("initContainers", [])]
        assert "istio-proxy" in names, why("{pod} has no istio-proxy sidecar: was it created before the label?", pod=pod["metadata"]["name"])


@check("mtls_strict", hint="`kubectl apply -f mtls.yaml`, then call web from a pod outside the mesh into ~/lab04/plaintext.txt (step 2).")
def mtls_strict(nodes):
    peer = nodes.api(PEER)
    assert peer is not None, "there is no PeerAuthentication default in lab04"
    assert peer["spec"].get("mtls", {}).get("mode") == "STRICT", "the PeerAuthentication's mode is not STRICT"
    plaintext = nodes.text(f"{DIR}/plaintext.txt")
    assert plaintext is not None, "~/lab04/plaintext.txt does not exist yet"
    assert "web v" not in plaintext, "the plaintext call got an answer: is mTLS STRICT applied?"
    text = plaintext
    # The sidecar resets a plaintext connection; a wrong name, a timeout or a wrong port
    # fail differently and prove nothing about mTLS.
    assert not re.search(r"bad address|timed out|can't connect|no route", text, re.IGNORECASE), why(
        "plaintext.txt shows another failure ({shown!r}): call http://web.lab04.svc.cluster.local from a pod in the default namespace", shown=text.strip()[:80]
    )
    assert re.search(r"reset by peer|error getting response", text, re.IGNORECASE), "plaintext.txt should show the sidecar resetting the plaintext call (Connection reset by peer)"


@check("canary_split", hint="`kubectl apply -f canary.yaml`, then count 100 answers from the client into ~/lab04/canary.txt (step 3).")
def canary_split(nodes):
    assert nodes.api(DR) is not None, "there is no DestinationRule web (the v1/v2 subsets)"
    vs = nodes.api(VS)
    assert vs is not None, "there is no VirtualService web"
    weights = {r["destination"].get("subset"): r.get("weight", 0) for route in vs["spec"].get("http", []) for r in route.get("route", [])}
    assert weights.get("v1") == 90 and weights.get("v2") == 10, why("the routes' weights are {weights}, not v1 90 / v2 10", weights=weights)
    counted = nodes.text(f"{DIR}/canary.txt")
    assert counted is not None, "~/lab04/canary.txt does not exist yet"
    counts = _counts(counted)
    total = sum(counts.values())
    assert total >= 50, why("canary.txt counts {total} answers: make 100 requests", total=total)
    share = counts.get("v2", 0) / total
    assert 0.02 <= share <= 0.25, why("v2 answered {share:.0%} of the requests, far from 10 %", share=share)


@check("fault_and_retries", hint="`kubectl apply -f fault.yaml` (step 4), then save 20 status codes from the client into ~/lab04/fault.txt.")
def fault_and_retries(nodes):
    vs = nodes.api(VS)
    assert vs is not None, "there is no VirtualService web"
    route = (vs["spec"].get("http") or [{}])[0]
    abort = route.get("fault", {}).get("abort", {})
    assert abort.get("httpStatus") == 503, "the route injects no 503 abort"
    assert route.get("retries", {}).get("attempts", 0) >= 2, "the route has no retries (attempts ≥ 2)"
    codes = nodes.text(f"{DIR}/fault.txt")
    assert codes is not None, "~/lab04/fault.txt does not exist yet"
    statuses = re.findall(r"\b([2-5]\d\d)\b", codes)
    assert len(statuses) >= 10, "fault.txt should hold at least 10 status codes"
    assert "503" in statuses, "no 503 among the status codes: is the fault applied?"
    assert "200" in statuses, "no request succeeded: with 30 % aborted, most should"
