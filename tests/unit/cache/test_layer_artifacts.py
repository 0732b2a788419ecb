"""The artifact manifest covers everything the roles reference: files and images.

Images are collected from the roles themselves (every `*_image`/`*_images` default and
the control plane images kubeadm derives from its rendered settings), files from every
`kit.artifacts.<name>` the roles read; each must be in labkit/artifacts.yml for amd64
and arm64, so a connected machine can fill the cache for an offline class.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from labkit import paths
from labkit.cache import manifest as cache_manifest
from tests.unit.k8s_schemas import load_filters

ROOT = Path(__file__).resolve().parents[3]
filters = load_filters()


def role_defaults() -> dict[str, object]:
    merged: dict[str, object] = {}
    for path in sorted(ROOT.glob("roles/*/defaults/main.yml")):
        merged.update(yaml.safe_load(path.read_text()) or {})
    return merged


def referenced_images() -> list[str]:
    d = role_defaults()
    refs: list[str] = []
    for key, value in d.items():
        if key.endswith("_images") and isinstance(value, list):
            refs += [str(v) for v in value]
        elif key.endswith("_images") and isinstance(value, dict):  # images per add-on
            refs += [str(v) for images in value.values() for v in images]
        elif key.endswith("_image") and isinstance(value, str) and "{{" not in value:
            refs.append(value)
    config = yaml.safe_load((ROOT / "sandbox.yml").read_text())
    repo, version = d["kubeadm_control_plane_image_repository"], config["versions"]["kubernetes"]
    refs += [f"{repo}/{c}:v{version}" for c in ("kube-apiserver", "kube-controller-manager", "kube-scheduler", "kube-proxy")]
    refs += [f"{repo}/coredns/coredns:{d['kubeadm_control_plane_coredns_tag']}", f"{repo}/etcd:{d['kubeadm_control_plane_etcd_tag']}"]
    return [filters.normalize_image(r) for r in refs]


def manifest_images() -> dict[str, set[str]]:
    m = cache_manifest.load_manifest([paths.MANIFEST])
    out: dict[str, set[str]] = {}
    for art in m.artifacts.values():
        if art.kind == "image":
            for per_arch in art.versions.values():
                for arch, dl in per_arch.items():
                    out.setdefault(dl.url.removeprefix("docker://"), set()).add(arch)
    return out


def test_the_roles_reference_the_images_of_every_component() -> None:
    refs = referenced_images()
    for expected in (
        "registry.k8s.io/kube-apiserver:v1.36.4",
        "registry.k8s.io/pause:3.10.2",
        "ghcr.io/flannel-io/flannel:v0.28.9",
        "docker.io/library/busybox:1.37.0",
        "docker.io/istio/proxyv2:1.30.5",
        "quay.io/kiali/kiali:v2.26",
        "docker.io/grafana/grafana:12.0.1",
        "docker.io/jaegertracing/jaeger:2.14.0",
    ):
        assert expected in refs


@pytest.mark.parametrize("ref", referenced_images())
def test_every_referenced_image_is_in_the_manifest_for_both_architectures(ref: str) -> None:
    images = manifest_images()
    assert ref in images, f"{ref} is referenced by a role but not listed in labkit/artifacts.yml"
    assert images[ref] >= {"amd64", "arm64"}


def test_every_artifact_the_roles_read_is_in_the_manifest() -> None:
    m = cache_manifest.load_manifest([paths.MANIFEST])
    text = "\n".join(p.read_text() for p in ROOT.glob("roles/*/defaults/main.yml"))
    names = set(re.findall(r"kit\.artifacts\.(\w+)", text)) | set(re.findall(r"kit\.artifacts\['([\w-]+)'\]", text))
    assert {"kubeadm", "kubelet", "kubectl", "crictl", "flannel_manifest", "metrics_server_manifest", "local_path_manifest", "helm", "istioctl", "istio_base_chart"} <= names
    for name in names:
        assert name in m.artifacts, f"roles read kit.artifacts.{name}, which labkit/artifacts.yml does not list"
        for per_arch in m.artifacts[name].versions.values():
            assert set(per_arch) >= {"amd64", "arm64"} or "all" in per_arch, name
