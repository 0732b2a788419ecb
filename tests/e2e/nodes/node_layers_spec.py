"""The node layers on the real VMs, after a reboot (testinfra over the generated inventory).

Not collected by the main suite (no test_ prefix): tests/e2e/test_vm_cluster.py runs it
with `--hosts=ansible://cluster --ansible-inventory=<state>/inventory.yml --sudo`.
"""

from __future__ import annotations

import pytest


def test_swap_stays_off(host):
    assert host.check_output("swapon --show --noheadings") == ""


@pytest.mark.parametrize("key", ["net.bridge.bridge-nf-call-iptables", "net.bridge.bridge-nf-call-ip6tables", "net.ipv4.ip_forward"])
def test_sysctls_hold(host, key):
    assert host.sysctl(key) == 1


@pytest.mark.parametrize("module", ["overlay", "br_netfilter"])
def test_modules_are_loaded(host, module):
    # Loaded by systemd-modules-load at boot (or built into the guest's kernel).
    assert host.file(f"/sys/module/{module}").is_directory


def test_containerd_runs(host):
    assert host.service("containerd").is_running
    assert host.service("containerd").is_enabled
    assert " v2." in host.check_output("ctr version") or " 2." in host.check_output("ctr version")


def test_node_ip_is_pinned(host):
    node_ip = host.ansible.get_variables()["node_ip"]
    assert host.file("/etc/default/kubelet").contains(f"--node-ip={node_ip}")


def test_apt_reaches_only_the_cache(host):
    assert host.file("/etc/apt/sources.list.d/labkit-cache.sources").exists
    assert not host.file("/etc/apt/sources.list").exists


def test_ctr_runs_a_container_from_an_image_served_by_the_cache(host):
    # Pulled through /etc/containerd/certs.d/labkit.local/hosts.toml → the host's cache.
    ref = host.ansible.get_variables()["kit"]["artifacts"]["standin_image"]["ref"]
    host.run_expect([0], f"ctr images pull --hosts-dir /etc/containerd/certs.d {ref}")
    name = "labkit-e2e-" + host.check_output("hostname")
    out = host.check_output(f"ctr run --rm {ref} {name} /bin/echo hello-from-the-cache")
    assert out == "hello-from-the-cache"
