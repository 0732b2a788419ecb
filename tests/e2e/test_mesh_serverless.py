"""End-to-end suite of the service mesh and serverless layers (marker `k8s`; `./kit test.e2e`).

On the connected-machine cluster (tests/e2e/k8s-cluster.yml, every layer): istiod Ready,
a sidecar injected, mTLS STRICT enforced (a pod outside the mesh is refused, one inside
is answered), a 90/10 traffic split observed through the ingress gateway from the host,
the mesh's traces in the Jaeger add-on,
and a Knative service that scales from zero (its cold start measured and printed) and
back to zero; labs 04-06 walked as their guides are written (`lab.walk`: each check
fails before its step and passes after it); every repository custom resource through a
strict server-side dry run and against the cached CRDs offline. Skipped, with the reason, where the cache lacks the
pinned upstream files.
"""

from __future__ import annotations

import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.e2e.connected import CONFIG, wait_for
from tests.e2e.harness import ROOT, record, walk_lab

pytestmark = pytest.mark.k8s
MESH = ROOT / "tests/e2e/mesh"
GATEWAY_PORT = 31080


def worker_ip() -> str:
    cfg = yaml.safe_load(CONFIG.read_text())
    net = cfg["network"]["cidr"].rsplit(".", 1)[0]
    return f"{net}.{11 + 1}"  # the first worker: network.first_host + 1


def through_gateway(host: str, path: str = "/", timeout: float = 30) -> str:
    request = urllib.request.Request(f"http://{worker_ip()}:{GATEWAY_PORT}{path}", headers={"Host": host})
    with urllib.request.urlopen(request, timeout=timeout) as resp:  # noqa: S310 - the suite's own VM
        return resp.read().decode()


def apply(api: Any, name: str) -> None:
    from kubernetes import dynamic

    client = dynamic.DynamicClient(api.ApiClient())
    for doc in yaml.safe_load_all((MESH / name).read_text()):
        if doc:
            resource = client.resources.get(api_version=doc["apiVersion"], kind=doc["kind"])
            client.server_side_apply(resource, body=doc, namespace=doc["metadata"].get("namespace"), field_manager="labkit-e2e")


def run_pod(api: Any, namespace: str, name: str, command: list[str]) -> tuple[str, str]:
    core = api.CoreV1Api()
    body = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"restartPolicy": "Never", "containers": [{"name": "c", "image": "labkit.local/samples/web:v1", "command": command}]},
    }
    core.create_namespaced_pod(namespace, body)
    phase = wait_for(f"pod {namespace}/{name} done", lambda: (p := core.read_namespaced_pod(name, namespace).status.phase) in ("Succeeded", "Failed") and p)
    return phase, core.read_namespaced_pod_log(name, namespace, container="c")


def test_istiod_is_ready(api: Any) -> None:
    deploy = api.AppsV1Api().read_namespaced_deployment("istiod", "istio-system")
    assert (deploy.status.available_replicas or 0) >= 1


def test_a_sidecar_is_injected(api: Any) -> None:
    apply(api, "workloads.yaml")
    apply(api, "istio.yaml")
    core = api.CoreV1Api()
    pods = wait_for("web pods running", lambda: [p for p in core.list_namespaced_pod("mesh-e2e", label_selector="app=web").items if p.status.phase == "Running"])
    names = [c.name for c in pods[0].spec.containers] + [c.name for c in pods[0].spec.init_containers or []]
    assert "istio-proxy" in names, names  # a sidecar container, or a native sidecar (init container)


def test_mtls_strict_refuses_plaintext_from_outside_the_mesh(api: Any) -> None:
    url = "http://web.mesh-e2e.svc.cluster.local/"
    outside, _ = run_pod(api, "outside-e2e", "plaintext", ["wget", "-qO-", "-T", "5", url])
    assert outside == "Failed"
    inside, body = run_pod(api, "mesh-e2e", "meshed", ["sh", "-c", f"sleep 5; wget -qO- -T 5 {url}"])
    assert inside == "Succeeded" and body.startswith("web v"), body


def test_a_90_10_split_is_observed_through_the_gateway(api: Any) -> None:
    wait_for("the gateway routes web.mesh.internal", lambda: through_gateway("web.mesh.internal").startswith("web v"))
    answers = [through_gateway("web.mesh.internal").split()[1] for _ in range(200)]
    share = answers.count("v2") / len(answers)
    record(f"mesh: v2 share of 200 requests = {share:.0%} (asked: 10%)", None)
    assert 0.03 <= share <= 0.20, share


def test_jaeger_receives_the_mesh_traces(api: Any) -> None:
    """With addons.jaeger on, istiod sends every request's spans to Jaeger (after the
    split test, the gateway and the web pods have handled traced requests)."""
    import json

    def services() -> list[str]:
        phase, body = run_pod(api, "outside-e2e", f"jaeger-{int(time.monotonic())}", ["wget", "-qO-", "-T", "5", "http://tracing.istio-system/jaeger/api/services"])
        return json.loads(body).get("data") or [] if phase == "Succeeded" else []

    found = wait_for("web's spans in Jaeger", lambda: "web.mesh-e2e" in (names := services()) and names, timeout=300)
    record(f"mesh: services traced in Jaeger: {', '.join(sorted(found))}", None)


def test_a_knative_service_scales_from_zero_and_back(api: Any) -> None:
    apply(api, "knative.yaml")
    core = api.CoreV1Api()

    def pods() -> list[Any]:
        return [p for p in core.list_namespaced_pod("knative-e2e", label_selector="serving.knative.dev/service=hello").items if not p.metadata.deletion_timestamp]

    host = "hello.knative-e2e.knative.internal"
    wait_for("hello answers once", lambda: through_gateway(host).startswith("Hello from"), timeout=600)
    wait_for("hello scaled to zero", lambda: not pods(), timeout=300)
    start = time.monotonic()
    body = through_gateway(host, timeout=120)
    cold = time.monotonic() - start
    record("serverless: cold start of hello (first request from zero)", cold)
    assert body.startswith("Hello from hello-")
    assert pods()
    start = time.monotonic()
    wait_for("hello back to zero", lambda: not pods(), timeout=300)
    record("serverless: back to zero after the last request", time.monotonic() - start)


@pytest.mark.parametrize("lab", ["04", "05"])
def test_lab_guide_runs_as_written_then_fails_after_reset(k8s: Any, api: Any, lab: str) -> None:
    k8s.kit("lab.start", lab, timeout=1200)
    assert k8s.kit("lab.check", lab, check=False).returncode != 0
    walk_lab(k8s, lab)
    k8s.kit("lab.check", lab)
    k8s.kit("lab.reset", lab, timeout=1200)
    assert k8s.kit("lab.check", lab, check=False).returncode != 0


def test_every_custom_resource_passes_the_api_servers_strict_dry_run(api: Any) -> None:
    """The authoritative check of the repository's Istio and Knative resources: the API
    server validates them against the installed CRDs (CEL rules included) and Knative's
    webhooks see them, with unknown fields refused; nothing is stored (dry run)."""
    from kubernetes import dynamic
    from kubernetes.client.exceptions import ApiException

    from tests.unit.k8s_schemas import repo_custom_resources

    client = dynamic.DynamicClient(api.ApiClient())
    namespace = "crd-e2e"
    try:
        api.CoreV1Api().create_namespace({"metadata": {"name": namespace}})
    except ApiException as exc:
        if exc.status != 409:
            raise
    refused = []
    for where, doc in repo_custom_resources():
        body = {**doc, "metadata": {**doc["metadata"], "namespace": namespace}}
        resource = client.resources.get(api_version=doc["apiVersion"], kind=doc["kind"])
        try:
            client.server_side_apply(resource, body=body, namespace=namespace, field_manager="labkit-e2e", dry_run="All", query_params=[("fieldValidation", "Strict")])
        except ApiException as exc:
            refused.append(f"{where}: {exc.status} {exc.body}")
    assert refused == []


def test_every_custom_resource_matches_the_cached_crds(k8s: Any) -> None:
    """The offline check (labkit.cache.crds) against the CRDs the cluster was installed from."""
    from labkit.cache import supply
    from labkit.cluster.kit import Kit
    from tests.unit.k8s_schemas import repo_custom_resources

    schemas = supply.custom_resource_schemas(Kit(config_path=CONFIG, state_dir=k8s.state_dir, say=lambda _: None))
    problems = [f"{where}: {p}" for where, doc in repo_custom_resources() for p in schemas.errors(doc)]
    assert problems == []
    record(f"custom resources checked against {len(schemas.versions)} CRD versions offline; CEL rules left to the API server: {len(schemas.unevaluated)}", None)


def test_the_ram_budget_is_measured_in_full_and_fits_8_gib(k8s: Any) -> None:
    from labkit.cluster import lifecycle
    from labkit.cluster.kit import Kit

    report = lifecycle.budget(Kit(config_path=CONFIG, state_dir=k8s.state_dir, say=lambda _: None))
    print(report.report())
    record(f"RAM budget: {report.total:.0f} MiB of requests for every layer", None)
    assert report.unmeasured == []
    assert report.total < 8192


def test_the_small_profiles_budget_fits_its_4_5_gib(k8s: Any, tmp_path: Path) -> None:
    """The small profile, measured in full from the same cache: its requests, and the
    system's share of each node (kubelet, containerd, the OS: about 600 MiB), fit the
    guest RAM it gives the nodes."""
    import shutil

    from labkit.cluster import lifecycle
    from labkit.cluster.kit import Kit

    cache_dir = Kit(config_path=CONFIG, state_dir=k8s.state_dir, say=lambda _: None).resolve().cache_dir  # the suite's filled cache
    shutil.copy(ROOT / "sandbox.yml", tmp_path / "sandbox.yml")
    (tmp_path / "sandbox.local.yml").write_text(f"profile: small\ncache: {{dir: {cache_dir}}}\n")
    k = Kit(config_path=tmp_path / "sandbox.yml", state_dir=tmp_path / "state", say=lambda _: None)
    report = lifecycle.budget(k)
    nodes = k.resolve().nodes
    print(report.report())
    record(f"RAM budget of the small profile: {report.total:.0f} MiB of requests in {sum(n.memory for n in nodes)} MiB of guest RAM", None)
    assert report.unmeasured == []
    assert report.total + 600 * len(nodes) <= sum(n.memory for n in nodes) <= 4608


def test_lab06_measures_the_ladder_after_lab05(k8s: Any, api: Any) -> None:
    k8s.kit("lab.start", "06", timeout=1200)
    assert k8s.kit("lab.check", "06", check=False).returncode != 0
    k8s.kit("lab.solve", "05", timeout=3600)  # lab 06 measures lab 05's function (its PingSource included: step 1 removes it)
    walk_lab(k8s, "06")
    k8s.kit("lab.check", "06")
    for line in (k8s.state_dir / "ladder.json").read_text().splitlines():
        record(f"  ladder: {line.strip()}", None)
    k8s.kit("lab.reset", "06", timeout=1200)
    assert k8s.kit("lab.check", "06", check=False).returncode != 0
