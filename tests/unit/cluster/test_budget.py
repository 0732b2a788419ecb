"""The RAM budget: memory requests read from manifests, per layer, unmeasured parts named."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from labkit.cluster import budget


@pytest.mark.parametrize(("q", "expected"), [("100Mi", 100.0), ("1Gi", 1024.0), ("512Ki", 0.5), ("64M", 61.035), (1048576, 1.0)])
def test_memory_quantities(q: object, expected: float) -> None:
    assert budget.mib(q) == pytest.approx(expected, abs=0.001)  # type: ignore[arg-type]


def pod(memory: str, init_sidecar: str | None = None) -> dict[str, object]:
    spec: dict[str, object] = {"containers": [{"name": "c", "resources": {"requests": {"memory": memory}}}]}
    if init_sidecar:
        spec["initContainers"] = [
            {"name": "setup", "resources": {"requests": {"memory": "500Mi"}}},  # ends before the pod runs: not counted
            {"name": "proxy", "restartPolicy": "Always", "resources": {"requests": {"memory": init_sidecar}}},
        ]
    return spec


def test_requests_count_replicas_daemonsets_per_node_and_native_sidecars() -> None:
    docs = [
        {"kind": "Deployment", "spec": {"replicas": 2, "template": {"spec": pod("100Mi")}}},
        {"kind": "DaemonSet", "spec": {"template": {"spec": pod("50Mi")}}},
        {"kind": "Pod", "spec": pod("10Mi", init_sidecar="40Mi")},
        {"kind": "ConfigMap", "data": {}},
        None,
    ]
    assert budget.requests_of(docs, nodes=3) == 200 + 150 + 50


def test_the_budget_measures_cached_manifests_and_names_the_rest(tmp_path: Path) -> None:
    (tmp_path / "files").mkdir()
    (tmp_path / "files/flannel.yml").write_text(yaml.safe_dump_all([{"kind": "DaemonSet", "spec": {"template": {"spec": pod("50Mi")}}}]))
    roles = {
        "istio_pilot_resources": {"requests": {"memory": "100Mi"}},
        "istio_gateway_resources": {"requests": {"memory": "40Mi"}},
        "istio_proxy_resources": {"requests": {"memory": "40Mi"}},
    }
    b = budget.compute(tmp_path, {"flannel_manifest": {"path": "files/flannel.yml"}}, roles, nodes=3, layers=["kubernetes", "istio"])
    assert b.layers["kubernetes"]["flannel_manifest"] == 150.0
    assert b.layers["istio"] == {"istiod": 100.0, "ingress gateway": 40.0, "sidecars (4 meshed pods)": 160.0}
    assert b.unmeasured == ["metrics_server_manifest", "local_path_manifest"]
    assert "not measured" in b.report() and b.total == 240 + 150 + 300


def test_a_layer_that_is_off_costs_nothing(tmp_path: Path) -> None:
    b = budget.compute(tmp_path, {}, {}, nodes=2, layers=[])
    assert b.total == 0 and b.unmeasured == []


def test_add_ons_are_measured_from_their_manifests_and_a_chart_is_named(tmp_path: Path) -> None:
    (tmp_path / "files").mkdir()
    (tmp_path / "files/prometheus.yaml").write_text(yaml.safe_dump_all([{"kind": "Deployment", "spec": {"template": {"spec": pod("256Mi", init_sidecar="32Mi")}}}]))
    artifacts = {"istio_addon_prometheus": {"path": "files/prometheus.yaml"}}
    b = budget.compute(tmp_path, artifacts, {}, nodes=3, layers=[], addons=["prometheus", "knative_eventing", "dashboard"])
    assert b.layers == {"add-on prometheus": {"istio_addon_prometheus": 288.0}}
    assert b.unmeasured == [
        "dashboard_chart (a Helm chart: rendered by helm on the cluster, not measured here)",
        "knative_eventing_core",
        "knative_in_memory_channel",
        "knative_mt_channel_broker",
    ]
    assert b.total == 288.0


def test_every_add_on_the_config_accepts_has_a_measure() -> None:
    from labkit.cluster.schema import ADDON_LAYER

    assert set(ADDON_LAYER) == set(budget.ADDON_MANIFESTS) | set(budget.ADDON_CHARTS)
