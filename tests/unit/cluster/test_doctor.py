"""Each host check, with the host's facts faked (no real host is read)."""

from __future__ import annotations

import ipaddress
import shutil
from dataclasses import replace
from pathlib import Path

import pytest

from labkit.cluster import doctor
from labkit.cluster.config import load
from labkit.cluster.host import HostFacts
from labkit.cluster.resolved import HostContext, Resolved, Route
from labkit.cluster.schema import ConfigError
from labkit.paths import ROOT
from tests.unit.configs import VALID, write

GOOD = HostFacts(
    system="Linux",
    vagrant_version="2.3.4",
    vagrant_plugins=("vagrant-libvirt",),
    libvirt_reachable=True,
    cpu_virt_flags=True,
    dev_kvm=True,
    mem_available_mib=16000,
    cpus=8,
    disk_free_gib=100.0,
    python_version=(3, 11),
    ansible_version="2.19.14",
)


@pytest.fixture
def cfg(tmp_path: Path) -> Resolved:
    return load(write(tmp_path, VALID), HostContext())


@pytest.fixture
def vbox_cfg(tmp_path: Path) -> Resolved:
    return load(write(tmp_path, VALID.replace("provider: libvirt", "provider: virtualbox")), HostContext(providers=("virtualbox",)))


def rows(facts: HostFacts, cfg: Resolved) -> dict[str, doctor.Check]:
    return {c.name: c for c in doctor.run_checks(facts, cfg)}


def test_a_good_host_passes_every_check(cfg: Resolved) -> None:
    result = rows(GOOD, cfg)
    assert {c.status for c in result.values()} == {"ok"}, result
    assert "virtualbox host-only range" not in result  # libvirt: not applicable


@pytest.mark.parametrize(
    ("change", "check", "status", "remedy"),
    [
        ({"vagrant_version": None}, "vagrant", "fail", "install Vagrant"),
        ({"vagrant_version": "2.2.19"}, "vagrant", "fail", "upgrade Vagrant"),
        ({"vagrant_plugins": ()}, "provider libvirt", "fail", "vagrant-libvirt"),
        ({"libvirt_reachable": False, "libvirt_error": "permission denied"}, "provider libvirt", "fail", "libvirt group"),
        ({"dev_kvm": False}, "hardware virtualization", "fail", "libvirt.driver: qemu"),
        ({"mem_available_mib": 4000}, "memory", "fail", "lower nodes[].memory"),
        ({"mem_available_mib": 6000}, "memory", "warn", "swap"),
        ({"cpus": 1}, "cpus", "fail", "≤ 1"),
        ({"disk_free_gib": 4.0}, "disk", "fail", "free disk space"),
        ({"routes": (Route(ipaddress.IPv4Network("192.168.56.128/25"), "eth1"),)}, "private network", "fail", "another network.cidr"),
        ({"routes": (Route(ipaddress.IPv4Network("192.168.121.0/24"), "br0"),)}, "private network", "fail", "libvirt.management_cidr"),
        ({"python_version": (3, 9)}, "python", "fail", "Python 3.11"),
        ({"ansible_version": None}, "ansible", "fail", "requirements.txt"),
        ({"ansible_version": "2.17.1"}, "ansible", "fail", "2.19.x"),
    ],
)
def test_each_failure_has_a_remedy(cfg: Resolved, change: dict[str, object], check: str, status: str, remedy: str) -> None:
    row = rows(replace(GOOD, **change), cfg)[check]
    assert row.status == status
    assert remedy in row.remedy


def test_own_bridge_route_is_not_a_collision(cfg: Resolved) -> None:
    facts = replace(GOOD, routes=(Route(ipaddress.IPv4Network("192.168.56.0/24"), "virbr1"), Route(ipaddress.IPv4Network("0.0.0.0/0"), "eth0")))
    assert rows(facts, cfg)["private network"].status == "ok"


def test_qemu_driver_is_a_warning(tmp_path: Path) -> None:
    cfg = load(write(tmp_path, VALID), HostContext(has_kvm=False))
    assert rows(replace(GOOD, dev_kvm=False), cfg)["hardware virtualization"].status == "warn"


def test_virtualbox_checks(vbox_cfg: Resolved) -> None:
    facts = replace(GOOD, vagrant_plugins=(), virtualbox_version="7.1.4r165100")
    result = rows(facts, vbox_cfg)
    assert result["provider virtualbox"].status == "ok"
    assert result["virtualbox host-only range"].status == "ok"
    assert rows(replace(facts, virtualbox_version=None), vbox_cfg)["provider virtualbox"].status == "fail"
    assert rows(replace(facts, virtualbox_version="6.1.50"), vbox_cfg)["provider virtualbox"].status == "fail"
    assert rows(replace(facts, cpu_virt_flags=False), vbox_cfg)["hardware virtualization"].status == "fail"


def test_virtualbox_range_follows_networks_conf(vbox_cfg: Resolved) -> None:
    facts = replace(GOOD, virtualbox_version="7.1.4", vbox_networks_conf="* 10.0.0.0/8\n")
    row = rows(facts, vbox_cfg)["virtualbox host-only range"]
    assert row.status == "fail"
    assert "networks.conf" in row.remedy


@pytest.mark.parametrize(
    ("arch", "provider", "vbox", "box", "status"),
    [
        ("amd64", "libvirt", None, "debian/trixie64 (the default for amd64) on libvirt", "ok"),
        ("arm64", "libvirt", None, "bento/debian-13 (the default for arm64) on libvirt", "ok"),
        ("arm64", "virtualbox", "7.1.6r167084", "bento/debian-13 (the default for arm64) on virtualbox", "ok"),
        ("arm64", "virtualbox", "7.0.20r163906", "bento/debian-13 (the default for arm64) on virtualbox", "fail"),
    ],
)
def test_doctor_says_which_box_and_provider_up_uses_for_the_hosts_architecture(tmp_path: Path, arch: str, provider: str, vbox: str | None, box: str, status: str) -> None:
    text = VALID.replace("provider: libvirt", f"provider: {provider}")
    resolved = load(write(tmp_path, text), HostContext(providers=(provider,), arch=arch))
    row = doctor.check_box(replace(GOOD, arch=arch, virtualbox_version=vbox), resolved)
    assert (row.status, row.detail.split(", for")[0].split(";")[0]) == (status, box)
    assert resolved.to_dict()["box"]["name"] == box.split()[0]


def test_a_named_box_is_kept_and_a_local_box_needs_an_amd64_host(tmp_path: Path) -> None:
    named = load(write(tmp_path, VALID.replace("nodes:", "box: {name: my/debian}\nnodes:", 1)), HostContext(arch="arm64"))
    assert named.box_name == "my/debian"
    with pytest.raises(ConfigError, match=r"box\.local = True: box\.build makes amd64 boxes; this host is arm64"):
        load(write(tmp_path, VALID.replace("nodes:", "box: {name: labkit/trixie, local: true}\nnodes:", 1)), HostContext(arch="arm64"))
    with pytest.raises(ConfigError, match=r"box\.name: there is no default box for a riscv64 host"):
        load(write(tmp_path, VALID), HostContext(arch="riscv64"))


def test_config_and_doctor_read_networks_conf_the_same_way(tmp_path: Path) -> None:
    """One home for the rule: after the user allows the range in networks.conf, as the
    config error told them to, both the config and doctor accept it."""
    facts = replace(GOOD, virtualbox_version="7.1.4", vbox_networks_conf="* 10.10.0.0/16\n")
    text = VALID.replace("provider: libvirt", "provider: virtualbox").replace("192.168.56.0/24", "10.10.0.0/24")
    with pytest.raises(ConfigError, match=r"networks\.conf"):
        load(write(tmp_path, text), replace(facts, vbox_networks_conf=None).context())
    resolved = load(write(tmp_path, text), facts.context())
    assert doctor.check_virtualbox_range(facts, resolved).status == "ok"  # type: ignore[union-attr]


def test_a_host_short_of_ram_is_told_of_the_small_profile_which_fits(tmp_path: Path) -> None:
    shutil.copy(ROOT / "sandbox.yml", tmp_path / "sandbox.yml")
    default = load(tmp_path / "sandbox.yml", HostContext())
    (tmp_path / "sandbox.local.yml").write_text("profile: small\n")
    small = load(tmp_path / "sandbox.yml", HostContext())
    short = replace(GOOD, mem_available_mib=doctor.needed_ram_mib(small) + 100)  # enough for the small profile only
    memory = rows(short, default)["memory"]
    assert memory.status in ("warn", "fail") and "profile: small" in memory.remedy
    assert rows(short, small)["memory"].status == "ok"  # the suggestion is one that works
