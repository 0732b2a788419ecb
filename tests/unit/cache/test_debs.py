"""Debian package handling: the repository index read from real .debs, role package lists,
and the reproducible stand-in archives."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
from pathlib import Path

import pytest

from labkit import contract
from labkit.cache import debs

needs_dpkg = pytest.mark.skipif(shutil.which("dpkg-deb") is None, reason="dpkg-deb builds the sample package")


def build_deb(tmp_path: Path, name: str, version: str) -> Path:
    pkg = tmp_path / name
    (pkg / "DEBIAN").mkdir(parents=True)
    (pkg / "DEBIAN/control").write_text(f"Package: {name}\nVersion: {version}\nArchitecture: all\nMaintainer: t <t@example.test>\nDescription: test\n")
    (pkg / "usr/share/doc").mkdir(parents=True)
    (pkg / "usr/share/doc/readme").write_text("hi\n")
    out = tmp_path / "repo" / f"{name}_{version}_all.deb"
    out.parent.mkdir(exist_ok=True)
    subprocess.run(["dpkg-deb", "--root-owner-group", "-Zxz", "--build", pkg, out], check=True, capture_output=True)
    return out


@needs_dpkg
def test_control_is_read_from_a_real_deb(tmp_path: Path) -> None:
    deb = build_deb(tmp_path, "hello-labkit", "1.2-3")
    control = debs.control_of(deb)
    assert "Package: hello-labkit\n" in control
    assert "Version: 1.2-3\n" in control


@needs_dpkg
def test_packages_index_lists_every_deb_with_its_checksum(tmp_path: Path) -> None:
    a = build_deb(tmp_path, "alpha", "1")
    b = build_deb(tmp_path, "beta", "2")
    index = debs.packages_index(tmp_path / "repo")
    paragraphs = index.strip().split("\n\n")
    assert len(paragraphs) == 2
    assert f"Filename: ./{a.name}\n" in paragraphs[0]
    assert f"SHA256: {hashlib.sha256(b.read_bytes()).hexdigest()}" in paragraphs[1]
    assert f"Size: {b.stat().st_size}" in paragraphs[1]


def test_not_a_deb_is_a_clear_error(tmp_path: Path) -> None:
    bad = tmp_path / "x.deb"
    bad.write_bytes(b"garbage")
    with pytest.raises(debs.KitError, match="not a Debian package"):
        debs.control_of(bad)


def test_role_packages_come_from_the_roles_defaults() -> None:
    packages = debs.role_packages()
    assert {"conntrack", "socat", "systemd-timesyncd"} <= set(packages)


def test_packages_belong_to_the_layer_of_their_role() -> None:
    per_layer = debs.layer_packages()
    assert "conntrack" in per_layer["node"]
    assert "python3-kubernetes" in per_layer["kubernetes"]
    assert contract.role_layer("kubeadm_control_plane") == "kubernetes"
    assert contract.role_layer("node_base") == "node"
    assert contract.role_layer("kubernetes_common") == "kubernetes"  # a dependency of cni_flannel, not named by a playbook


def test_a_role_only_a_dependency_belongs_to_the_layer_of_its_first_dependent(tmp_path: Path) -> None:
    books, roles = tmp_path / "playbooks", tmp_path / "roles"
    books.mkdir()
    (books / "istio.yml").write_text("- hosts: all\n  roles: [{role: mesh}]\n")
    (books / "knative.yml").write_text("- hosts: all\n  roles: [serve]\n")
    for role, deps in {"mesh": "[{role: shared}]", "serve": "[shared]", "shared": "[]", "loose": "[]"}.items():
        (roles / role / "meta").mkdir(parents=True)
        (roles / role / "meta/main.yml").write_text(f"dependencies: {deps}\n")
    assert contract.role_layer("shared", books, roles) == "istio"
    assert contract.role_layer("serve", books, roles) == "knative"
    assert contract.role_layer("loose", books, roles) == "node"


def test_every_role_package_is_pinned_in_the_deb_manifest() -> None:
    import yaml

    pinned = set(yaml.safe_load(debs.LOCK.read_text())["artifacts"])
    missing = [p for p in debs.role_packages() if f"deb-{p}" not in pinned]
    assert missing == [], f"run `./kit cache.lock-debs`: {missing} are not pinned"


def test_standin_archives_are_reproducible(tmp_path: Path) -> None:
    src = tmp_path / "containerd"
    src.write_bytes(b"\x7fELF pretend binary")
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    debs._tar({src: "bin/containerd"}, tmp_path / "a/c.tar.gz")
    src.touch()  # a later mtime must not change the archive
    debs._tar({src: "bin/containerd"}, tmp_path / "b/c.tar.gz")
    assert (tmp_path / "a/c.tar.gz").read_bytes() == (tmp_path / "b/c.tar.gz").read_bytes()
