"""The configurations the roles render: kubeadm's (against its v1beta4 API) and Istio's chart values.

Ansible renders the real templates (tests/unit/render/render.yml) for the default
3-node sandbox.yml; every document must use only kinds and fields of kubeadm's API
reference, with the values the config asks for. The checker itself is shown to reject
the mistakes it exists for (v1beta3-style fields, maps where v1beta4 wants lists).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.unit.k8s_schemas import kubeadm_errors

ROOT = Path(__file__).resolve().parents[3]


def docs(text: str) -> dict[str, dict[str, Any]]:
    return {d["kind"]: d for d in yaml.safe_load_all(text) if d}


def test_every_rendered_document_matches_the_kubeadm_api(rendered: dict[str, Any]) -> None:
    files = rendered["files"]
    kubeadm_files = [name for name in files if name.endswith((".yaml", ".yml")) and "kubeadm" in name]
    assert sorted(kubeadm_files) == ["cp1-kubeadm-init.yaml", "cp1-single-kubeadm-init.yaml", "worker1-kubeadm-join.yaml", "worker2-kubeadm-join.yaml"]
    for name in kubeadm_files:
        for doc in yaml.safe_load_all(files[name]):
            assert kubeadm_errors(doc) == [], name


def test_init_configuration_follows_the_config(rendered: dict[str, Any]) -> None:
    r = rendered["resolved"]
    d = docs(rendered["files"]["cp1-kubeadm-init.yaml"])
    assert set(d) == {"InitConfiguration", "ClusterConfiguration", "KubeletConfiguration", "KubeProxyConfiguration"}
    init, cluster, kubelet = d["InitConfiguration"], d["ClusterConfiguration"], d["KubeletConfiguration"]
    cp_ip = r["nodes"][0]["ip"]
    assert init["localAPIEndpoint"]["advertiseAddress"] == cp_ip  # the private NIC, never NAT
    assert {"name": "node-ip", "value": cp_ip} in init["nodeRegistration"]["kubeletExtraArgs"]
    assert init["nodeRegistration"]["criSocket"] == "unix:///run/containerd/containerd.sock"
    assert cluster["kubernetesVersion"] == "v" + r["versions"]["kubernetes"]
    assert cluster["networking"]["podSubnet"] == r["network"]["pod_cidr"]
    assert cluster["networking"]["serviceSubnet"] == r["network"]["service_cidr"]
    assert cluster["controlPlaneEndpoint"] == f"{cp_ip}:6443"
    assert cp_ip in cluster["apiServer"]["certSANs"]
    assert kubelet["cgroupDriver"] == "systemd"
    assert d["KubeProxyConfiguration"]["clusterCIDR"] == r["network"]["pod_cidr"]
    assert "taints" not in init["nodeRegistration"]  # kubeadm's NoSchedule taint: workloads go to the workers


def test_a_one_node_cluster_leaves_the_control_plane_untainted(rendered: dict[str, Any]) -> None:
    init = docs(rendered["files"]["cp1-single-kubeadm-init.yaml"])["InitConfiguration"]
    assert init["nodeRegistration"]["taints"] == []


def test_join_configuration_carries_the_token_and_the_workers_own_address(rendered: dict[str, Any]) -> None:
    r = rendered["resolved"]
    for node in r["nodes"][1:]:
        join = docs(rendered["files"][f"{node['name']}-kubeadm-join.yaml"])["JoinConfiguration"]
        assert join["discovery"]["bootstrapToken"]["token"] == "abcdef.0123456789abcdef"  # noqa: S105 - the test double's token
        assert join["discovery"]["bootstrapToken"]["apiServerEndpoint"] == f"{r['nodes'][0]['ip']}:6443"
        assert join["discovery"]["bootstrapToken"]["caCertHashes"] == ["sha256:" + "0" * 64]
        assert join["nodeRegistration"]["name"] == node["name"]
        assert {"name": "node-ip", "value": node["ip"]} in join["nodeRegistration"]["kubeletExtraArgs"]


def test_kubelet_unit_runs_the_binary_with_kubeadms_flags(rendered: dict[str, Any]) -> None:
    dropin = rendered["files"]["cp1-10-kubeadm.conf"]
    assert "EnvironmentFile=-/var/lib/kubelet/kubeadm-flags.env" in dropin
    assert "EnvironmentFile=-/etc/default/kubelet" in dropin
    assert "ExecStart=/usr/local/bin/kubelet $KUBELET_KUBECONFIG_ARGS $KUBELET_CONFIG_ARGS $KUBELET_KUBEADM_ARGS $KUBELET_EXTRA_ARGS" in dropin
    assert "ExecStart=/usr/local/bin/kubelet\n" in rendered["files"]["cp1-kubelet.service"]


@pytest.mark.parametrize(
    ("doc", "expected"),
    [
        ({"apiVersion": "kubeadm.k8s.io/v1beta3", "kind": "InitConfiguration"}, "is not one of"),
        ({"apiVersion": "kubeadm.k8s.io/v1beta4", "kind": "KubeletConfiguration"}, "is not in kubeadm.k8s.io/v1beta4"),
        ({"apiVersion": "kubeadm.k8s.io/v1beta4", "kind": "ClusterConfiguration", "apiServer": {"timeoutForControlPlane": "4m0s"}}, "unknown field 'timeoutForControlPlane'"),
        ({"apiVersion": "kubeadm.k8s.io/v1beta4", "kind": "InitConfiguration", "nodeRegistration": {"kubeletExtraArgs": {"node-ip": "1.2.3.4"}}}, "expected a list"),
        ({"apiVersion": "kubeadm.k8s.io/v1beta4", "kind": "InitConfiguration", "timeouts": {"kubeletHealthCheck": "4 minutes"}}, "is not a duration"),
        ({"apiVersion": "kubeadm.k8s.io/v1beta4", "kind": "JoinConfiguration"}, "missing required field 'discovery'"),
        ({"apiVersion": "kubeadm.k8s.io/v1beta4", "kind": "InitConfiguration", "nodeRegistration": {"imagePullPolicy": "Sometimes"}}, "is not one of"),
        ({"apiVersion": "kubelet.config.k8s.io/v1beta1", "kind": "KubeletConfiguration", "cgroupDriver": "systemd"}, "missing required field 'containerRuntimeEndpoint'"),
    ],
)
def test_the_checker_rejects_what_kubeadm_rejects(doc: dict[str, Any], expected: str) -> None:
    errors = kubeadm_errors(doc)
    assert any(expected in e for e in errors), errors


def test_istio_values_are_the_laptop_profile(rendered: dict[str, Any]) -> None:
    istiod = yaml.safe_load(rendered["files"]["cp1-istiod-values.yaml"])
    assert istiod["profile"] == "demo"
    assert istiod["global"]["tag"] == rendered["resolved"]["versions"]["istio"]
    assert istiod["pilot"]["autoscaleEnabled"] is False and istiod["pilot"]["replicaCount"] == 1
    assert istiod["pilot"]["resources"]["requests"] == {"cpu": "10m", "memory": "100Mi"}
    assert istiod["global"]["proxy"]["resources"]["requests"] == {"cpu": "10m", "memory": "40Mi"}
    assert istiod["global"]["defaultPodDisruptionBudget"] == {"enabled": False}  # one replica: a drain must not wait for ever


def test_tracing_is_off_unless_the_jaeger_add_on_is_on(rendered: dict[str, Any]) -> None:
    assert "meshConfig" not in yaml.safe_load(rendered["files"]["cp1-istiod-values.yaml"])


def test_the_jaeger_add_on_sends_the_mesh_traces_over_opentelemetry(rendered: dict[str, Any]) -> None:
    mesh = yaml.safe_load(rendered["files"]["cp1-tracing-istiod-values.yaml"])["meshConfig"]
    assert mesh["enableTracing"] is True and mesh["defaultConfig"] == {"tracing": {}}
    assert mesh["extensionProviders"] == [{"name": "jaeger", "opentelemetry": {"service": "jaeger-collector.istio-system.svc.cluster.local", "port": 4317}}]
    telemetry = yaml.safe_load(rendered["files"]["cp1-tracing-telemetry.yaml"])
    assert telemetry["apiVersion"] == "telemetry.istio.io/v1" and telemetry["metadata"] == {"name": "mesh-default", "namespace": "istio-system"}
    assert telemetry["spec"]["tracing"] == [{"providers": [{"name": "jaeger"}], "randomSamplingPercentage": 100}]


def test_istio_gateway_answers_on_fixed_node_ports(rendered: dict[str, Any]) -> None:
    gateway = yaml.safe_load(rendered["files"]["cp1-gateway-values.yaml"])
    assert gateway["service"]["type"] == "NodePort"
    ports = {p["name"]: p for p in gateway["service"]["ports"]}
    assert ports["http2"]["nodePort"] == 31080 and ports["https"]["nodePort"] == 31443
    assert ports["status-port"]["port"] == 15021 and "nodePort" not in ports["status-port"]
    assert gateway["autoscaling"]["enabled"] is False
    assert gateway["resources"]["requests"] == {"cpu": "10m", "memory": "40Mi"}
