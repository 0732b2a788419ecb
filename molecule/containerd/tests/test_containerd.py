"""containerd, read as its specification (testinfra, on the converged container)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml


def kit_vars():
    """The `kit` variable the converge read (written by `./kit test.molecule`)."""
    return yaml.safe_load(Path(os.environ["LABKIT_MOLECULE_VARS"]).read_text())["kit"]


def test_containerd_runs_and_starts_at_boot(host):
    service = host.service("containerd")
    assert service.is_running
    assert service.is_enabled


def test_containerd_is_2x(host):
    assert host.check_output("/usr/local/bin/containerd --version").split()[2].lstrip("v").startswith("2.")


def test_socket_listens(host):
    assert host.socket("unix:///run/containerd/containerd.sock").is_listening


def test_runc_is_installed(host):
    runc = host.file("/usr/local/sbin/runc")
    assert runc.mode == 0o755
    assert "runc version" in host.check_output("/usr/local/sbin/runc --version")


@pytest.mark.parametrize("plugin", ["bridge", "host-local", "loopback", "portmap"])
def test_cni_plugins_are_installed(host, plugin):
    assert host.file(f"/opt/cni/bin/{plugin}").is_file
    assert host.file(f"/opt/cni/bin/{plugin}").mode & 0o111


def test_config_uses_systemd_cgroups_and_the_pinned_sandbox(host):
    config = host.file("/etc/containerd/config.toml")
    assert config.mode == 0o644
    assert "SystemdCgroup = true" in config.content_string
    pause = kit_vars()["images"]["image-pause"]  # the artifact manifest's reference
    assert pause.startswith("registry.k8s.io/pause:")
    assert f'sandbox = "{pause}"' in config.content_string


def test_cri_plugin_is_loaded(host):
    plugins = host.check_output("ctr plugins ls")
    cri = [line for line in plugins.splitlines() if "io.containerd.grpc.v1" in line and " cri " in line]
    assert cri and cri[0].split()[-1] == "ok"


def test_crictl_talks_to_containerd(host):
    assert "unix:///run/containerd/containerd.sock" in host.file("/etc/crictl.yaml").content_string


def test_the_archives_are_kept_so_a_rerun_fetches_nothing(host):
    # runc is a single binary: it is downloaded in place, and its checksum is checked there.
    kept = sorted(host.file("/var/cache/labkit").listdir())
    assert [name.split("-")[0] for name in kept] == ["cni", "containerd"]
    assert all(host.file(f"/var/cache/labkit/{name}").mode == 0o644 for name in kept)


def test_every_registry_is_pulled_through_the_cache(host):
    hosts = host.file("/etc/containerd/certs.d/_default/hosts.toml")
    assert hosts.mode == 0o644
    assert '[host."http://127.0.0.1:8790"]' in hosts.content_string
    assert 'capabilities = ["pull", "resolve"]' in hosts.content_string
