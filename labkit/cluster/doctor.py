"""`./kit doctor`: check the host before anything is created.

Each check is a small function of ``HostFacts`` (and the resolved config, for what the
cluster asks of the host) returning one ``Check`` row with a remedy when it fails.
The real facts come from ``labkit.cluster.host.gather``; tests pass fake ones.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from labkit.cluster.host import HostFacts, virtualbox_ranges
from labkit.cluster.resolved import Resolved
from labkit.cluster.rules import route_collisions
from labkit.cluster.schema import DEFAULT_BOXES, MIN_VIRTUALBOX_ARM64

Status = Literal["ok", "warn", "fail"]

MIN_VAGRANT = (2, 3, 0)
MIN_VIRTUALBOX = (7, 0)
MIN_PYTHON = (3, 11)
ANSIBLE_CORE_SERIES = "2.19"
# Host RAM a guest costs beyond its own memory (QEMU, page tables, caches): measured
# ~1.5 GB of host RAM per 1 GiB guest under TCG; about 25 % under KVM/VirtualBox.
GUEST_OVERHEAD = {"qemu": 0.5, "kvm": 0.25, "virtualbox": 0.25}
HOST_RESERVE_MIB = 1024  # for the host itself, Vagrant and Ansible
DISK_PER_NODE_GIB = 5.0
DISK_BASE_GIB = 3.0  # box image, artifact cache headroom


@dataclass(frozen=True)
class Check:
    name: str
    status: Status
    detail: str
    remedy: str = ""


def _ver(text: str) -> tuple[int, ...]:
    return tuple(int(p) for p in text.split(".") if p.isdigit())


def check_vagrant(facts: HostFacts, cfg: Resolved) -> Check:
    if facts.vagrant_version is None:
        return Check("vagrant", "fail", "not installed", "install Vagrant ≥ 2.3 (Debian/Ubuntu: `sudo apt install vagrant`; else the installer from HashiCorp)")
    if _ver(facts.vagrant_version) < MIN_VAGRANT:
        return Check("vagrant", "fail", f"version {facts.vagrant_version}", "upgrade Vagrant to 2.3 or newer")
    return Check("vagrant", "ok", f"version {facts.vagrant_version}")


def check_provider(facts: HostFacts, cfg: Resolved) -> Check:
    if cfg.provider == "libvirt":
        if "vagrant-libvirt" not in facts.vagrant_plugins:
            return Check(
                "provider libvirt",
                "fail",
                "the vagrant-libvirt plugin is missing",
                "`sudo apt install vagrant-libvirt libvirt-daemon-system` (or `vagrant plugin install vagrant-libvirt`)",
            )
        if not facts.libvirt_reachable:
            return Check(
                "provider libvirt",
                "fail",
                f"libvirtd does not answer on qemu:///system ({facts.libvirt_error or 'no answer'})",
                "start it (`sudo systemctl start libvirtd`) and add yourself to the libvirt group (`sudo usermod -aG libvirt $USER`, then log in again)",
            )
        return Check("provider libvirt", "ok", "vagrant-libvirt installed, libvirtd answers")
    if facts.virtualbox_version is None:
        return Check("provider virtualbox", "fail", "VirtualBox is not installed", "install VirtualBox 7 from virtualbox.org, or use provider: libvirt on Linux")
    if _ver(facts.virtualbox_version.split("r")[0])[:2] < MIN_VIRTUALBOX:
        return Check("provider virtualbox", "fail", f"VirtualBox {facts.virtualbox_version}", "upgrade to VirtualBox 7")
    return Check("provider virtualbox", "ok", f"VirtualBox {facts.virtualbox_version}")


def check_virtualization(facts: HostFacts, cfg: Resolved) -> Check:
    if cfg.provider == "libvirt":
        if cfg.libvirt_driver == "qemu":
            return Check(
                "hardware virtualization",
                "warn",
                "libvirt driver is qemu: software emulation, about 5x slower",
                "enable VT-x/AMD-V in the firmware and use libvirt.driver: kvm (or auto) for speed",
            )
        if not facts.dev_kvm:
            return Check(
                "hardware virtualization",
                "fail",
                "/dev/kvm is missing but libvirt.driver is kvm",
                "enable VT-x/AMD-V in the firmware and load kvm_intel/kvm_amd, or set libvirt.driver: qemu (slow)",
            )
        return Check("hardware virtualization", "ok", "/dev/kvm present")
    if not facts.cpu_virt_flags and facts.system == "Linux":
        return Check("hardware virtualization", "fail", "the CPU shows no vmx/svm flag", "enable VT-x/AMD-V in the firmware settings")
    return Check("hardware virtualization", "ok", "VirtualBox uses the CPU's virtualization")


def needed_ram_mib(cfg: Resolved) -> int:
    overhead = GUEST_OVERHEAD["virtualbox" if cfg.provider == "virtualbox" else cfg.libvirt_driver]
    guests = sum(n.memory for n in cfg.nodes)
    return int(guests * (1 + overhead)) + HOST_RESERVE_MIB


def check_memory(facts: HostFacts, cfg: Resolved) -> Check:
    guests = sum(n.memory for n in cfg.nodes)
    need = needed_ram_mib(cfg)
    detail = f"{facts.mem_available_mib} MiB available; the {len(cfg.nodes)} VMs ask {guests} MiB (~{need} MiB of host RAM with overhead)"
    small = "" if cfg.config.profile == "small" else "; or set `profile: small` in sandbox.local.yml (every layer the labs need in 4.5 GiB of guest RAM: labkit/profiles/small.yml)"
    if facts.mem_available_mib < guests:
        return Check("memory", "fail", detail, "close other programs, or lower nodes[].memory / remove a worker in sandbox.local.yml" + small)
    if facts.mem_available_mib < need:
        return Check("memory", "warn", detail, "the host may swap: close other programs or lower nodes[].memory" + small)
    return Check("memory", "ok", detail)


def check_cpus(facts: HostFacts, cfg: Resolved) -> Check:
    biggest = max(n.cpus for n in cfg.nodes)
    total = sum(n.cpus for n in cfg.nodes)
    detail = f"{facts.cpus} host CPUs; largest VM {biggest}, all VMs {total}"
    if biggest > facts.cpus:
        return Check("cpus", "fail", detail, f"no VM may have more vCPUs than the host: lower nodes[].cpus to ≤ {facts.cpus}")
    if total > 2 * facts.cpus:
        return Check("cpus", "warn", detail, "heavily over-committed: expect slow provisioning")
    return Check("cpus", "ok", detail)


def check_disk(facts: HostFacts, cfg: Resolved) -> Check:
    need = DISK_BASE_GIB + DISK_PER_NODE_GIB * len(cfg.nodes)
    detail = f"{facts.disk_free_gib:.1f} GiB free; about {need:.0f} GiB needed"
    if facts.disk_free_gib < need:
        return Check("disk", "fail", detail, "free disk space (e.g. `vagrant box prune`, remove old VMs)")
    return Check("disk", "ok", detail)


def check_network(facts: HostFacts, cfg: Resolved) -> Check:
    nets = {"network.cidr": ipaddress.IPv4Network(cfg.config.network.cidr)}
    if cfg.provider == "libvirt":
        nets["libvirt.management_cidr"] = ipaddress.IPv4Network(cfg.config.libvirt.management_cidr)
    for key, net in nets.items():
        hits = route_collisions(net, facts.routes)
        if hits:
            where = ", ".join(f"{r.network} on {r.dev}" for r in hits)
            return Check("private network", "fail", f"{key} {net} collides with host route(s) {where}", f"choose another {key} in sandbox.local.yml")
    return Check("private network", "ok", ", ".join(f"{k} {v}" for k, v in nets.items()) + ": no host route collides")


def check_virtualbox_range(facts: HostFacts, cfg: Resolved) -> Check | None:
    if cfg.provider != "virtualbox":
        return None
    net = ipaddress.IPv4Network(cfg.config.network.cidr)
    allowed = virtualbox_ranges(facts.vbox_networks_conf)
    if any(net.subnet_of(a) for a in allowed):
        return Check("virtualbox host-only range", "ok", f"{net} is inside {', '.join(map(str, allowed))}")
    return Check(
        "virtualbox host-only range",
        "fail",
        f"{net} is outside VirtualBox's allowed ranges ({', '.join(map(str, allowed)) or 'none'})",
        f"use a network inside 192.168.56.0/21, or add `* {net}` to /etc/vbox/networks.conf",
    )


def check_python(facts: HostFacts, cfg: Resolved) -> Check:
    shown = ".".join(map(str, facts.python_version))
    if tuple(facts.python_version) < MIN_PYTHON:
        return Check("python", "fail", f"Python {shown}", "install Python 3.11 or newer, then re-run ./kit (it rebuilds .venv)")
    return Check("python", "ok", f"Python {shown}")


def check_ansible(facts: HostFacts, cfg: Resolved) -> Check:
    if facts.ansible_version is None:
        return Check("ansible", "fail", "ansible-core is not importable", "re-run `./kit` so it installs requirements.txt into .venv")
    if not facts.ansible_version.startswith(ANSIBLE_CORE_SERIES + "."):
        return Check("ansible", "fail", f"ansible-core {facts.ansible_version}", f"the kit is pinned to ansible-core {ANSIBLE_CORE_SERIES}.x: delete .venv and re-run ./kit")
    return Check("ansible", "ok", f"ansible-core {facts.ansible_version}")


def check_box(facts: HostFacts, cfg: Resolved) -> Check:
    """Which box and provider `up` will use, and whether they fit this host's architecture."""
    chosen = "from box.name" if cfg.config.box.name else f"the default for {facts.arch}"
    detail = f"{cfg.box_name} ({chosen}) on {cfg.provider}, for a {facts.arch} host"
    old_vbox = bool(facts.virtualbox_version) and _ver(str(facts.virtualbox_version).split("r")[0])[:2] < MIN_VIRTUALBOX_ARM64
    if facts.arch == "arm64" and cfg.provider == "virtualbox" and old_vbox:
        return Check("box", "fail", f"{detail}; VirtualBox {facts.virtualbox_version}", "VirtualBox runs arm64 guests from 7.1 on: upgrade it (or use VMware/Parallels)")
    if cfg.config.box.name is None and facts.arch not in DEFAULT_BOXES:
        return Check("box", "fail", detail, f"name a Debian 13 box built for {facts.arch} in box.name")
    return Check("box", "ok", detail)


CHECKS: tuple[Callable[[HostFacts, Resolved], Check | None], ...] = (
    check_vagrant,
    check_provider,
    check_box,
    check_virtualization,
    check_memory,
    check_cpus,
    check_disk,
    check_network,
    check_virtualbox_range,
    check_python,
    check_ansible,
)


def run_checks(facts: HostFacts, cfg: Resolved) -> list[Check]:
    return [row for check in CHECKS if (row := check(facts, cfg)) is not None]
