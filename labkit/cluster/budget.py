"""The RAM budget: the memory requests of everything the kit installs, per layer.

Computed from the manifests themselves (so it cannot drift): the release manifests in
the artifact cache (Flannel, metrics-server, local-path, Knative, net-istio), the
values the kit renders for Istio's charts (istiod, gateway, one sidecar per meshed
pod), the sample workloads' manifests, and kubeadm's control plane and CoreDNS, whose
requests kubeadm writes itself (`KUBEADM_REQUESTS`, from kubeadm's static pod and
CoreDNS manifests). A manifest the cache does not hold yet is reported as unmeasured,
never guessed.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

# Memory requests kubeadm sets in the manifests it generates (MiB): etcd requests 100Mi,
# CoreDNS 70Mi per replica (2 replicas); the API server, controller manager and scheduler
# request CPU only.
KUBEADM_REQUESTS = {"etcd": 100.0, "coredns (2 replicas)": 140.0}
_UNIT = {"Ki": 1 / 1024, "Mi": 1.0, "Gi": 1024.0, "K": 1000 / 1024**2, "M": 1000**2 / 1024**2, "G": 1000**3 / 1024**2, "": 1 / 1024**2}


def mib(quantity: str | int | float) -> float:
    """A Kubernetes memory quantity in MiB."""
    m = re.fullmatch(r"([0-9.]+)(Ki|Mi|Gi|K|M|G)?", str(quantity).strip())
    if not m:
        raise ValueError(f"not a memory quantity: {quantity!r}")
    return float(m.group(1)) * _UNIT[m.group(2) or ""]


def _pod_spec(doc: Mapping[str, Any]) -> tuple[Mapping[str, Any], int, bool] | None:
    kind = doc.get("kind")
    spec = doc.get("spec") or {}
    if kind == "Pod":
        return spec, 1, False
    if kind in ("Deployment", "StatefulSet", "ReplicaSet"):
        return (spec.get("template") or {}).get("spec") or {}, int(spec.get("replicas", 1)), False
    if kind == "DaemonSet":
        return (spec.get("template") or {}).get("spec") or {}, 1, True
    return None


def requests_of(docs: Iterable[Mapping[str, Any] | None], nodes: int) -> float:
    """The memory requests of the documents' pods in MiB (a DaemonSet counts once per node)."""
    total = 0.0
    for doc in docs:
        found = _pod_spec(doc or {})
        if found is None:
            continue
        spec, replicas, per_node = found
        # Long-running containers count: the containers and native sidecars (init
        # containers with restartPolicy Always); plain init containers end before them.
        running = [*spec.get("containers", []), *(c for c in spec.get("initContainers", []) if c.get("restartPolicy") == "Always")]
        per_pod = sum(mib(c.get("resources", {}).get("requests", {}).get("memory", 0)) for c in running)
        total += per_pod * (nodes if per_node else replicas)
    return total


@dataclass
class Budget:
    layers: dict[str, dict[str, float]] = field(default_factory=dict)
    unmeasured: list[str] = field(default_factory=list)

    def add(self, layer: str, part: str, value: float) -> None:
        self.layers.setdefault(layer, {})[part] = round(value, 1)

    @property
    def total(self) -> float:
        return round(sum(v for parts in self.layers.values() for v in parts.values()), 1)

    def report(self) -> str:
        lines = []
        for layer, parts in self.layers.items():
            lines.append(f"{layer:<12} {sum(parts.values()):8.0f} MiB")
            lines += [f"  {name:<34} {value:8.1f} MiB" for name, value in parts.items()]
        lines.append(f"{'total':<12} {self.total:8.0f} MiB of requests")
        if self.unmeasured:
            lines.append("not measured (not in the cache yet): " + ", ".join(self.unmeasured))
        return "\n".join(lines)


# The release manifests whose pods each layer, and each add-on, runs.
LAYER_MANIFESTS = {
    "kubernetes": ["flannel_manifest", "metrics_server_manifest", "local_path_manifest"],
    "knative": ["knative_serving_core", "knative_net_istio"],
}
ADDON_MANIFESTS = {
    "prometheus": ["istio_addon_prometheus"],
    "kiali": ["istio_addon_kiali"],
    "grafana": ["istio_addon_grafana"],
    "jaeger": ["istio_addon_jaeger"],
    "knative_eventing": ["knative_eventing_core", "knative_in_memory_channel", "knative_mt_channel_broker"],
}
# Add-ons installed from a Helm chart: their requests come from the chart's templates
# (`helm template`), which this module does not render; named, never guessed.
ADDON_CHARTS = {"dashboard": "dashboard_chart"}


def compute(
    cache_dir: Path,
    artifacts: Mapping[str, Mapping[str, str]],
    roles: Mapping[str, Any],
    nodes: int,
    layers: Iterable[str],
    meshed_pods: int = 4,
    addons: Iterable[str] = (),
) -> Budget:
    """The budget of the enabled ``layers`` and ``addons``: ``artifacts`` as the roles get
    them (kit.artifacts), ``roles`` the roles' defaults merged (Istio's resources)."""
    budget = Budget()
    on = set(layers)
    manifests = {layer: list(names) for layer, names in LAYER_MANIFESTS.items() if layer in on}
    for addon in addons:
        if addon in ADDON_CHARTS:
            budget.unmeasured.append(f"{ADDON_CHARTS[addon]} (a Helm chart: rendered by helm on the cluster, not measured here)")
        manifests.setdefault(f"add-on {addon}", []).extend(ADDON_MANIFESTS.get(addon, []))
    if "kubernetes" in on:
        for part, value in KUBEADM_REQUESTS.items():
            budget.add("kubernetes", part, value)
    if "istio" in on:
        budget.add("istio", "istiod", mib(roles["istio_pilot_resources"]["requests"]["memory"]))
        budget.add("istio", "ingress gateway", mib(roles["istio_gateway_resources"]["requests"]["memory"]))
        budget.add("istio", f"sidecars ({meshed_pods} meshed pods)", meshed_pods * mib(roles["istio_proxy_resources"]["requests"]["memory"]))
    for layer, names in manifests.items():
        for name in names:
            item = artifacts.get(name)
            path = cache_dir / item["path"] if item else None
            if path is None or not path.exists():
                budget.unmeasured.append(name)
                continue
            budget.add(layer, name, requests_of(yaml.safe_load_all(path.read_text()), nodes))
    return budget
