"""node_base, read as its specification (testinfra, on the converged container)."""

from __future__ import annotations

import pytest

NODE_IP = "192.168.59.11"


def test_hostname_is_the_inventory_name(host):
    assert host.check_output("hostname") == "node1"


def test_every_node_is_in_etc_hosts(host):
    hosts = host.file("/etc/hosts")
    assert f"{NODE_IP} node1" in hosts.content_string
    assert hosts.content_string.count("# BEGIN labkit cluster nodes") == 1


def test_apt_uses_only_the_cache(host):
    source = host.file("/etc/apt/sources.list.d/labkit-cache.sources")
    assert source.mode == 0o644
    assert "URIs: http://127.0.0.1:8790/debs/" in source.content_string
    assert not host.file("/etc/apt/sources.list").exists
    assert not host.file("/etc/apt/sources.list.d/debian.sources").exists


@pytest.mark.parametrize("package", ["conntrack", "socat", "ebtables", "ethtool", "iptables", "systemd-timesyncd"])
def test_kubeadm_preflight_packages_are_installed(host, package):
    assert host.package(package).is_installed


def test_swap_is_off_and_stays_off(host):
    assert host.check_output("swapon --show --noheadings") == ""
    assert host.run("systemctl is-enabled swap.target").stdout.strip() == "masked"


@pytest.mark.parametrize("key", ["net.bridge.bridge-nf-call-iptables", "net.bridge.bridge-nf-call-ip6tables", "net.ipv4.ip_forward"])
def test_networking_sysctls_are_set_and_persisted(host, key):
    assert host.sysctl(key) == 1
    assert f"{key}=1" in host.file("/etc/sysctl.d/90-labkit-kubernetes.conf").content_string


def test_container_modules_are_available_and_persisted(host):
    assert "overlay" in host.file("/proc/filesystems").content_string
    assert host.file("/proc/sys/net/bridge").is_directory
    assert host.file("/etc/modules-load.d/labkit.conf").content_string.split("\n")[1:3] == ["overlay", "br_netfilter"]


def test_time_sync_is_enabled(host):
    assert host.service("systemd-timesyncd").is_enabled


def test_kubelet_is_pinned_to_the_private_address(host):
    assert host.file("/etc/default/kubelet").contains(f"--node-ip={NODE_IP}")
    env = host.file("/etc/labkit-node.env").content_string
    assert f"NODE_IP={NODE_IP}" in env
    assert "NODE_INTERFACE=labkit0" in env
