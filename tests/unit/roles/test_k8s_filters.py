"""The filters that adapt upstream release manifests, and what they produce.

The upstream manifests themselves are artifacts (fetched into the cache on a connected
machine, never copied here), so these tests use small documents of the same shape,
written for the tests: the Flannel DaemonSet and its ConfigMap, metrics-server's
Deployment, local-path's ConfigMap and StorageClass. Each patched result is validated
against the Kubernetes 1.36 schemas.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from labkit import paths
from labkit.cache import manifest as cache_manifest
from tests.unit.k8s_schemas import k8s_errors, load_filters

ROOT = Path(__file__).resolve().parents[3]
f = load_filters()


def pod_template(containers: list[dict[str, Any]], labels: dict[str, str]) -> dict[str, Any]:
    return {"metadata": {"labels": labels}, "spec": {"containers": containers}}


def flannel_docs() -> list[dict[str, Any]]:
    labels = {"app": "flannel"}
    return [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "kube-flannel"}},
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "kube-flannel-cfg", "namespace": "kube-flannel"},
            "data": {"net-conf.json": json.dumps({"Network": "10.244.0.0/16", "EnableNFTables": False, "Backend": {"Type": "vxlan"}})},
        },
        {
            "apiVersion": "apps/v1",
            "kind": "DaemonSet",
            "metadata": {"name": "kube-flannel-ds", "namespace": "kube-flannel"},
            "spec": {
                "selector": {"matchLabels": labels},
                "template": {
                    "metadata": {"labels": labels},
                    "spec": {
                        "initContainers": [{"name": "install-cni-plugin", "image": "ghcr.io/flannel-io/flannel-cni-plugin:v1.9.1-flannel3"}],
                        "containers": [{"name": "kube-flannel", "image": "ghcr.io/flannel-io/flannel:v0.28.9", "args": ["--ip-masq", "--kube-subnet-mgr"]}],
                    },
                },
            },
        },
    ]


def defaults(role: str) -> dict[str, Any]:
    """The role's defaults as Ansible templates them, with the `kit.images` the kit renders
    from the artifact manifest (the roles write no image reference of their own)."""
    from ansible.parsing.dataloader import DataLoader
    from ansible.template import Templar

    data = DataLoader().load_from_file(str(ROOT / "roles" / role / "defaults/main.yml"), trusted_as_template=True)  # as Ansible loads role defaults
    versions = yaml.safe_load((ROOT / "sandbox.yml").read_text())["versions"]
    kit = {"images": cache_manifest.image_refs(cache_manifest.load_manifest([paths.MANIFEST]), versions)}
    templar = Templar(loader=DataLoader(), variables={"kit": kit})
    # what reads only kit.images (or nothing) is templated; the rest is left out
    # (as plain Python values: json drops Ansible's tags)
    return {key: json.loads(json.dumps(templar.template(value))) for key, value in data.items() if "{{" not in str(value) or "{{ kit.images" in str(value)}


def test_flannel_is_bound_to_every_private_address_and_the_pod_range() -> None:
    docs = f.require_images(flannel_docs(), defaults("cni_flannel")["cni_flannel_images"])
    docs = f.configmap_json(docs, "kube-flannel-cfg", "net-conf.json", {"Network": "10.200.0.0/16", "Backend": {"Type": "vxlan"}})
    docs = f.container_args(docs, "DaemonSet", "kube-flannel-ds", "kube-flannel", ["--iface=192.168.56.11", "--iface=192.168.56.12"])
    ds = docs[2]["spec"]["template"]["spec"]["containers"][0]
    assert ds["args"] == ["--ip-masq", "--kube-subnet-mgr", "--iface=192.168.56.11", "--iface=192.168.56.12"]
    net = json.loads(docs[1]["data"]["net-conf.json"])
    assert net == {"Network": "10.200.0.0/16", "EnableNFTables": False, "Backend": {"Type": "vxlan"}}
    for doc in docs:
        assert k8s_errors(doc) == []


def test_patching_is_idempotent_and_replaces_a_flag_given_again() -> None:
    once = f.container_args(flannel_docs(), "DaemonSet", "kube-flannel-ds", "kube-flannel", ["--iface=10.0.0.1"])
    twice = f.container_args(once, "DaemonSet", "kube-flannel-ds", "kube-flannel", ["--iface=10.0.0.2"])
    assert twice[2]["spec"]["template"]["spec"]["containers"][0]["args"] == ["--ip-masq", "--kube-subnet-mgr", "--iface=10.0.0.2"]
    assert flannel_docs()[2] == f.container_args(flannel_docs(), "DaemonSet", "kube-flannel-ds", "kube-flannel", [])[2]


def test_a_manifest_with_unpinned_images_is_refused() -> None:
    with pytest.raises(f.AnsibleFilterError, match=re.escape("not pinned: ghcr.io/flannel-io/flannel:v0.28.9")):
        f.require_images(flannel_docs(), ["ghcr.io/flannel-io/flannel-cni-plugin:v1.9.1-flannel3"])


def test_missing_objects_are_named() -> None:
    with pytest.raises(f.AnsibleFilterError, match="no DaemonSet named 'kube-flannel'"):
        f.container_args(flannel_docs(), "DaemonSet", "kube-flannel", "kube-flannel", ["--iface=1.2.3.4"])
    with pytest.raises(f.AnsibleFilterError, match="no container named 'flannel'"):
        f.container_args(flannel_docs(), "DaemonSet", "kube-flannel-ds", "flannel", [])


@pytest.mark.parametrize(
    ("short", "full"),
    [
        ("busybox", "docker.io/library/busybox"),
        ("busybox:1.37.0", "docker.io/library/busybox:1.37.0"),
        ("rancher/local-path-provisioner:v0.0.37", "docker.io/rancher/local-path-provisioner:v0.0.37"),
        ("registry.k8s.io/pause:3.10.2", "registry.k8s.io/pause:3.10.2"),
        ("localhost/x:1", "localhost/x:1"),
        ("labkit.local:8790/standin/busybox:1", "labkit.local:8790/standin/busybox:1"),
    ],
)
def test_image_references_are_normalised_like_containerd_does(short: str, full: str) -> None:
    assert f.normalize_image(short) == full


def test_metrics_server_gets_the_kubeadm_arguments() -> None:
    labels = {"k8s-app": "metrics-server"}
    deploy = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "metrics-server", "namespace": "kube-system"},
        "spec": {
            "selector": {"matchLabels": labels},
            "template": pod_template(
                [
                    {
                        "name": "metrics-server",
                        "image": "registry.k8s.io/metrics-server/metrics-server:v0.9.0",
                        "args": ["--kubelet-preferred-address-types=InternalIP,ExternalIP,Hostname"],
                    }
                ],
                labels,
            ),
        },
    }
    d = defaults("kubernetes_addons")
    docs = f.require_images([deploy], d["kubernetes_addons_metrics_server_images"])
    docs = f.container_args(docs, "Deployment", "metrics-server", "metrics-server", d["kubernetes_addons_metrics_server_args"])
    assert docs[0]["spec"]["template"]["spec"]["containers"][0]["args"] == ["--kubelet-insecure-tls", "--kubelet-preferred-address-types=InternalIP"]
    assert k8s_errors(docs[0]) == []


def test_local_path_becomes_the_default_class_with_a_pinned_helper() -> None:
    helper = yaml.safe_dump({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "helper-pod"}, "spec": {"containers": [{"name": "helper-pod", "image": "busybox"}]}})
    docs = [
        {
            "apiVersion": "storage.k8s.io/v1",
            "kind": "StorageClass",
            "metadata": {"name": "local-path"},
            "provisioner": "rancher.io/local-path",
            "volumeBindingMode": "WaitForFirstConsumer",
        },
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "local-path-config", "namespace": "local-path-storage"}, "data": {"helperPod.yaml": helper}},
    ]
    d = defaults("kubernetes_addons")
    docs = f.configmap_pod_image(docs, "local-path-config", "helperPod.yaml", d["kubernetes_addons_local_path_helper_image"])
    docs = f.annotate(docs, "StorageClass", "local-path", {"storageclass.kubernetes.io/is-default-class": "true"})
    assert docs[0]["metadata"]["annotations"] == {"storageclass.kubernetes.io/is-default-class": "true"}
    pod = yaml.safe_load(docs[1]["data"]["helperPod.yaml"])
    assert pod["spec"]["containers"][0]["image"] == "docker.io/library/busybox:1.37.0"
    for doc in [*docs, pod]:
        assert k8s_errors(doc) == []


def test_node_and_pod_readiness_is_read_from_their_status() -> None:
    nodes = [
        {"metadata": {"name": "cp1"}, "status": {"conditions": [{"type": "Ready", "status": "True"}]}},
        {"metadata": {"name": "worker1"}, "status": {"conditions": [{"type": "Ready", "status": "False"}]}},
        {"metadata": {"name": "worker2"}, "status": {}},
    ]
    assert f.nodes_not_ready(nodes) == ["worker1", "worker2"]
    pods = [
        {"metadata": {"namespace": "kube-system", "name": "etcd-cp1"}, "status": {"phase": "Running"}},
        {
            "metadata": {"namespace": "kube-system", "name": "coredns-1"},
            "status": {"phase": "Pending", "containerStatuses": [{"state": {"waiting": {"reason": "ImagePullBackOff"}}}]},
        },
        {"metadata": {"namespace": "kube-flannel", "name": "job"}, "status": {"phase": "Succeeded"}},
    ]
    assert f.pods_not_running(pods) == ["kube-system/coredns-1 (Pending: ImagePullBackOff)"]


def test_the_schema_check_rejects_what_the_api_server_rejects() -> None:
    bad = flannel_docs()[2]
    bad["spec"]["template"]["spec"]["containers"][0]["imagePullPolicyy"] = "Always"
    bad["spec"]["replicas"] = 2  # a DaemonSet has no replicas
    errors = k8s_errors(bad)
    assert any("imagePullPolicyy" in e for e in errors) and any("replicas" in e for e in errors), errors
    assert k8s_errors({"apiVersion": "example.com/v1", "kind": "Widget"}) == ["no Kubernetes v1.36.0 schema for example.com/v1 Widget"]


def knative_docs() -> list[dict[str, Any]]:
    labels = {"app": "controller"}
    digest = "sha256:" + "3" * 64
    return [
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "config-domain", "namespace": "knative-serving"}, "data": {"_example": "# documentation only"}},
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "config-autoscaler", "namespace": "knative-serving"}, "data": {"_example": "# documentation only"}},
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "controller", "namespace": "knative-serving"},
            "spec": {
                "selector": {"matchLabels": labels},
                "template": pod_template([{"name": "controller", "image": f"gcr.io/knative-releases/knative.dev/serving/cmd/controller@{digest}"}], labels),
            },
        },
    ]


def test_knative_settings_land_in_its_configmaps() -> None:
    d = defaults("knative")
    docs = f.require_digests(knative_docs())
    docs = f.configmap_data(docs, "config-domain", {d["knative_domain"]: ""})
    docs = f.configmap_data(docs, "config-autoscaler", d["knative_autoscaler"])
    assert docs[0]["data"] == {"_example": "# documentation only", "knative.internal": ""}
    assert docs[1]["data"]["enable-scale-to-zero"] == "true"
    assert docs[1]["data"]["scale-to-zero-grace-period"] == "30s"
    for doc in docs:
        assert k8s_errors(doc) == []


def test_configmap_values_are_stored_as_strings() -> None:
    docs = f.configmap_data(knative_docs(), "config-autoscaler", {"enable-scale-to-zero": True, "max-scale": 3, "list": ["a"]})
    assert docs[1]["data"] | {} == {"_example": "# documentation only", "enable-scale-to-zero": "true", "max-scale": "3", "list": '["a"]'}
    assert k8s_errors(docs[1]) == []


def test_an_image_not_pinned_by_digest_is_refused() -> None:
    docs = knative_docs()
    docs[2]["spec"]["template"]["spec"]["containers"][0]["image"] = "gcr.io/knative-releases/knative.dev/serving/cmd/controller:latest"
    with pytest.raises(f.AnsibleFilterError, match="not pinned by digest"):
        f.require_digests(docs)


def test_disruption_budgets_let_a_single_replica_be_drained() -> None:
    """Knative's activator and webhook budgets (minAvailable: 80% of one replica) would
    block `kubectl drain` (lab 03) for ever; one eviction at a time is allowed instead."""
    pdb = {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": {"name": "activator-pdb", "namespace": "knative-serving"},
        "spec": {"minAvailable": "80%", "selector": {"matchLabels": {"app": "activator"}}},
    }
    docs = f.single_replica_disruptions([*knative_docs(), pdb])
    assert docs[-1]["spec"] == {"maxUnavailable": 1, "selector": {"matchLabels": {"app": "activator"}}}
    assert docs[:-1] == knative_docs()
    assert k8s_errors(docs[-1]) == []


def test_the_knative_role_relaxes_the_budgets_of_every_manifest_that_runs_pods() -> None:
    """Every Knative manifest applied with images (all but the CRDs) goes through the
    digest check and the single-replica budget filter."""
    tasks = yaml.safe_load((ROOT / "roles/knative/tasks/main.yml").read_text())
    definitions = {t["name"]: t["kubernetes.core.k8s"]["definition"] for t in tasks if "kubernetes.core.k8s" in t}
    with_pods = {name: d for name, d in definitions.items() if "CRDs" not in name}
    assert len(with_pods) == 3, sorted(definitions)
    for name, definition in with_pods.items():
        assert "labkit_require_digests" in definition and "labkit_single_replica_disruptions" in definition, name
