"""The resolved cluster: nodes with their addresses, the provider and box chosen, and the
few host facts validation needs (``HostContext``), passed in so rules are testable.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from labkit.cluster.schema import DEFAULT_BOXES, LAYERS, VIRTUALBOX_HOSTONLY_RANGE, SandboxConfig

# --------------------------------------------------------------------------- resolution


@dataclass(frozen=True)
class Route:
    """A route of the host: destination network and device."""

    network: ipaddress.IPv4Network
    dev: str


@dataclass(frozen=True)
class HostContext:
    """The few host facts config validation needs, passed in (faked in tests)."""

    system: str = "Linux"
    providers: tuple[str, ...] = ("libvirt",)
    routes: tuple[Route, ...] = ()
    has_kvm: bool = True
    arch: str = "amd64"  # the host's architecture, Debian's name (the VMs run the same)
    # Host-only ranges VirtualBox allows: its default, or /etc/vbox/networks.conf's.
    virtualbox_ranges: tuple[ipaddress.IPv4Network, ...] = (VIRTUALBOX_HOSTONLY_RANGE,)


# Bridges the hypervisors create for their own private networks: a route on one of
# these for exactly the kit's CIDR is the kit's own network from an earlier `up`.
HYPERVISOR_BRIDGE_PREFIXES = ("virbr", "vboxnet")


@dataclass(frozen=True)
class ResolvedNode:
    name: str
    role: str
    cpus: int
    memory: int
    ip: str


@dataclass(frozen=True)
class Resolved:
    """The single resolved form every consumer reads."""

    config: SandboxConfig
    provider: str
    nodes: tuple[ResolvedNode, ...]
    libvirt_driver: str
    sources: tuple[str, ...]
    root: Path
    extra: dict[str, Any] = field(default_factory=dict)
    arch: str = "amd64"

    @property
    def box_name(self) -> str:
        """The box Vagrant boots: the config's, else the default for the host's architecture."""
        return self.config.box.name or DEFAULT_BOXES.get(self.arch) or DEFAULT_BOXES["amd64"]

    @property
    def control_plane(self) -> ResolvedNode:
        return next(n for n in self.nodes if n.role == "control-plane")

    @property
    def workers(self) -> tuple[ResolvedNode, ...]:
        return tuple(n for n in self.nodes if n.role == "worker")

    @property
    def cache_dir(self) -> Path:
        return under(self.root, self.config.cache.dir)

    @property
    def cache_host(self) -> str:
        """The host's address on the private network, where the nodes reach the cache."""
        return str(next(iter(self.config.network.cidr.hosts())))

    @property
    def apt_keyring(self) -> Path | None:
        k = self.config.cache.mirrors.apt_keyring
        return None if k is None else under(self.root, k)

    @property
    def overlays(self) -> list[Path]:
        return [under(self.root, p) for p in self.config.cache.overlays]

    def enabled_layers(self) -> list[str]:
        return [layer for layer in LAYERS if getattr(self.config.layers, layer)]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form, read by the Vagrantfile and rendered into the inventory."""
        cfg = self.config
        return {
            "name": cfg.name,
            "provider": self.provider,
            "box": {**cfg.box.model_dump(), "name": self.box_name},
            "arch": self.arch,
            "boot_timeout": cfg.boot_timeout,
            "nodes": [vars(n) for n in self.nodes],
            "network": {
                "cidr": str(cfg.network.cidr),
                "prefixlen": cfg.network.cidr.prefixlen,
                "netmask": str(cfg.network.cidr.netmask),
                "host_ip": str(next(iter(cfg.network.cidr.hosts()))),
                "pod_cidr": str(cfg.network.pod_cidr),
                "service_cidr": str(cfg.network.service_cidr),
            },
            "layers": cfg.layers.model_dump(),
            "addons": cfg.addons.model_dump(),
            "versions": cfg.versions.model_dump(),
            "control_plane_workloads": cfg.control_plane_workloads,
            "cache": {
                "dir": str(self.cache_dir),
                "overlays": [str(p) for p in self.overlays],
                "host": self.cache_host,
                "port": cfg.cache.port,
                "url": f"http://{self.cache_host}:{cfg.cache.port}",
                "registry": f"{self.cache_host}:{cfg.cache.port}",
            },
            "libvirt": {
                "driver": self.libvirt_driver,
                "management_cidr": str(cfg.libvirt.management_cidr),
                "management_network_name": f"{cfg.name}-mgmt",
                "private_network_name": f"{cfg.name}-private",
                "storage_pool": cfg.libvirt.storage_pool,
            },
            "sources": list(self.sources),
        }


def under(root: Path, path: Path) -> Path:
    """A path of the config: `~` expanded, relative ones taken from the config's folder."""
    path = path.expanduser()
    return path if path.is_absolute() else root / path
