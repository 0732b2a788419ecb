"""The artifact manifest is the one place images and release files are written, and it
covers everything the roles use.

The roles name artifacts (`kit.artifacts.<name>`, `kit.images['<name>']`) and never write
an image reference themselves; every name they read must be in labkit/artifacts.yml for
amd64 and arm64, so a connected machine can fill the cache for an offline class. The
images kubeadm and Istio's charts derive from the rendered settings (repository, tags,
hub) must be images the manifest lists.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from labkit import paths
from labkit.cache import manifest as cache_manifest
from labkit.errors import KitError

ROOT = Path(__file__).resolve().parents[3]
# registry host with a dot, a repository path, a tag: docker.io/library/busybox:1.37.0
LITERAL_IMAGE = re.compile(r"\b(?:[a-z0-9-]+\.)+[a-z]{2,}(?::\d+)?/[a-z0-9._/-]+:[A-Za-z0-9._-]+")


def role_files() -> list[Path]:
    return sorted(p for p in (ROOT / "roles").rglob("*") if p.suffix in {".yml", ".j2"})


def names_read(kind: str) -> set[str]:
    text = "\n".join(p.read_text() for p in role_files())
    return set(re.findall(rf"kit\.{kind}\.(\w+)", text)) | set(re.findall(rf"kit\.{kind}\['([\w-]+)'\]", text))


def manifest() -> cache_manifest.Manifest:
    return cache_manifest.load_manifest([paths.MANIFEST])


def images_of(rendered: dict[str, Any]) -> set[str]:
    return set(cache_manifest.image_refs(manifest(), rendered["resolved"]["versions"]).values())


def test_the_literal_image_pattern_finds_references() -> None:
    assert LITERAL_IMAGE.findall("image: ghcr.io/flannel-io/flannel:v0.28.9 and docker.io/library/busybox:1.37.0") == [
        "ghcr.io/flannel-io/flannel:v0.28.9",
        "docker.io/library/busybox:1.37.0",
    ]
    assert LITERAL_IMAGE.findall("url: {{ kit.cache.url }}/files/x and kit.images['image-pause']") == []


@pytest.mark.parametrize("path", role_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_no_role_writes_an_image_reference(path: Path) -> None:
    assert LITERAL_IMAGE.findall(path.read_text()) == [], "write the image in labkit/artifacts.yml and read it as kit.images['<name>']"


def test_the_roles_name_the_images_of_every_component() -> None:
    expected = {"image-pause", "image-flannel", "image-flannel-cni-plugin", "image-coredns", "image-etcd", "image-istio-pilot", "image-busybox", "image-kiali"}
    assert expected <= names_read("images")


@pytest.mark.parametrize("name", sorted(names_read("images")))
def test_every_image_the_roles_name_is_in_the_manifest_for_both_architectures(name: str) -> None:
    art = manifest().artifacts.get(name)
    assert art is not None and art.kind == "image", f"roles read kit.images['{name}'], which labkit/artifacts.yml does not list as an image"
    for per_arch in art.versions.values():
        assert set(per_arch) >= {"amd64", "arm64"}, name


def test_every_artifact_the_roles_read_is_in_the_manifest() -> None:
    m = manifest()
    names = names_read("artifacts")
    assert {"kubeadm", "kubelet", "kubectl", "crictl", "flannel_manifest", "metrics_server_manifest", "local_path_manifest", "helm", "istioctl", "istio_base_chart"} <= names
    for name in names:
        assert name in m.artifacts, f"roles read kit.artifacts.{name}, which labkit/artifacts.yml does not list"
        for per_arch in m.artifacts[name].versions.values():
            assert set(per_arch) >= {"amd64", "arm64"} or "all" in per_arch, name


def test_the_control_plane_images_kubeadm_derives_are_in_the_manifest(rendered: dict[str, Any]) -> None:
    docs = {d["kind"]: d for d in yaml.safe_load_all(rendered["files"]["cp1-kubeadm-init.yaml"]) if d}
    cluster = docs["ClusterConfiguration"]
    repo, version = cluster["imageRepository"], cluster["kubernetesVersion"]
    derived = {f"{repo}/{c}:{version}" for c in ("kube-apiserver", "kube-controller-manager", "kube-scheduler", "kube-proxy")}
    derived |= {f"{repo}/coredns/coredns:{cluster['dns']['imageTag']}", f"{repo}/etcd:{cluster['etcd']['local']['imageTag']}"}
    assert derived <= images_of(rendered), derived - images_of(rendered)


def test_the_images_istios_charts_derive_are_in_the_manifest(rendered: dict[str, Any]) -> None:
    values = yaml.safe_load(rendered["files"]["cp1-istiod-values.yaml"])["global"]
    derived = {f"{values['hub']}/{name}:{values['tag']}" for name in ("pilot", "proxyv2")}
    assert derived <= images_of(rendered), derived - images_of(rendered)


def synthetic(per_arch_urls: dict[str, str], layer: str = "kubernetes") -> cache_manifest.Manifest:
    downloads = {arch: {"url": url, "sha256": None} for arch, url in per_arch_urls.items()}
    return cache_manifest.Manifest.model_validate(
        {
            "artifacts": {
                "image-x": {"kind": "image", "layer": layer, "version_key": "x", "versions": {"1.0": downloads}},
                "tool": {"kind": "file", "layer": "node", "version": "2", "versions": {"2": {"amd64": {"url": "https://e.test/tool", "sha256": None}}}},
            }
        }
    )


def test_image_refs_name_every_image_at_the_configured_version_whichever_layers_are_on() -> None:
    m = synthetic({"amd64": "docker://r.test/x:v1.0", "arm64": "docker://r.test/x:v1.0"}, layer="istio")
    assert cache_manifest.image_refs(m, {"x": "1.0"}) == {"image-x": "r.test/x:v1.0"}  # images only, no scheme
    assert cache_manifest.image_refs(m, {"x": "9.9"}) == {}  # no entry: the plan refuses it when its layer is on


def test_image_refs_refuse_an_image_that_differs_per_architecture() -> None:
    m = synthetic({"amd64": "docker://r.test/x:v1.0", "arm64": "docker://r.test/x-arm:v1.0"})
    with pytest.raises(KitError, match="a different image per architecture"):
        cache_manifest.image_refs(m, {"x": "1.0"})
