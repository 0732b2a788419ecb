"""The cluster config's schema: what ``sandbox.yml`` may say, as pydantic models, and
the problems a config can have (``Problem``, ``ConfigError``).

The ground floor of the kit: it imports nothing of ours but the error type.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from labkit.errors import KitError

CONFIG_NAME = "sandbox.yml"
PROVIDERS = ("libvirt", "virtualbox")
# VirtualBox 7 only allows host-only networks in this range unless /etc/vbox/networks.conf says otherwise.
VIRTUALBOX_HOSTONLY_RANGE = ipaddress.IPv4Network("192.168.56.0/21")
# Which major.minor each pinned component must stay on (the kit is tested with these).
SUPPORTED_SERIES: dict[str, tuple[str, ...]] = {
    "kubernetes": ("1.36",),
    "containerd": ("2.2", "2.3"),
    "istio": ("1.30",),
    "knative": ("1.23",),
}
LAYERS = ("kubernetes", "istio", "knative")
ADDON_LAYER = {"dashboard": "kubernetes", "prometheus": "istio", "kiali": "istio", "grafana": "istio", "jaeger": "istio", "knative_eventing": "knative"}
LAYER_NEEDS = {"istio": "kubernetes", "knative": "istio"}
# Minimum memory (MiB) per node role for each layer; "base" applies always.
MEMORY_MINIMUMS: dict[str, dict[str, int]] = {
    "base": {"control-plane": 512, "worker": 512},
    "kubernetes": {"control-plane": 2048, "worker": 1024},
    "istio": {"control-plane": 2048, "worker": 2048},
    "knative": {"control-plane": 2048, "worker": 2048},
}
# kubeadm's preflight refuses a control plane with fewer than 2 CPUs.
KUBERNETES_CONTROL_PLANE_CPUS = 2

VERSION_RE = re.compile(r"^\d+\.\d+\.\d+$")
NAME_RE = r"^[a-z][a-z0-9-]{0,30}[a-z0-9]$|^[a-z]$"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=False, frozen=True)


class Node(_Strict):
    """One VM (or one real machine) of the cluster."""

    name: Annotated[str, Field(pattern=NAME_RE)]
    role: Literal["control-plane", "worker"]
    cpus: Annotated[int, Field(ge=1, le=64, strict=True)] = 2
    memory: Annotated[int, Field(ge=256, le=262144, strict=True, description="MiB")] = 2048
    ip: ipaddress.IPv4Address | None = None


class Network(_Strict):
    """The private network the nodes talk on; node IPs are derived from it."""

    cidr: ipaddress.IPv4Network = ipaddress.IPv4Network("192.168.56.0/24")
    first_host: Annotated[int, Field(ge=2, strict=True)] = 11
    pod_cidr: ipaddress.IPv4Network = ipaddress.IPv4Network("10.244.0.0/16")
    service_cidr: ipaddress.IPv4Network = ipaddress.IPv4Network("10.96.0.0/12")


# The default box per host architecture: Debian 13 wherever a Vagrant box of it is built.
# Debian's official box is amd64 only; Chef's Bento project builds debian-13 for arm64
# (VirtualBox 7.1+, VMware, Parallels, libvirt/QEMU on aarch64 Linux).
DEFAULT_BOXES = {"amd64": "debian/trixie64", "arm64": "bento/debian-13"}
MIN_VIRTUALBOX_ARM64 = (7, 1)


class Box(_Strict):
    """The Vagrant base box."""

    name: str | None = None  # None: DEFAULT_BOXES for the host's architecture
    version: str | None = None
    local: bool = False  # true: built here by `./kit box.build` (libvirt only)
    suite: str = "trixie"  # Debian suite of a local box
    mirror: str = "http://deb.debian.org/debian"  # Debian mirror a local box is built from


class Layers(_Strict):
    kubernetes: bool = True
    istio: bool = True
    knative: bool = True


class Addons(_Strict):
    """Optional parts of a layer, off by default (each one costs RAM and download time)."""

    dashboard: bool = False  # the Kubernetes Dashboard (kubernetes layer)
    prometheus: bool = False  # Istio's Prometheus add-on (istio layer)
    kiali: bool = False  # Kiali, the mesh's console (istio layer; needs prometheus)
    grafana: bool = False  # Grafana with Istio's dashboards (istio layer; needs prometheus)
    jaeger: bool = False  # Jaeger, and the mesh's traces sent to it (istio layer)
    knative_eventing: bool = False  # Knative Eventing (knative layer): brokers, event sources


class Versions(_Strict):
    """Pinned versions of everything the layers install (exact x.y.z, never `latest`)."""

    kubernetes: str
    containerd: str
    runc: str
    cni_plugins: str
    cni: Literal["flannel", "calico"] = "flannel"
    cni_version: str
    istio: str
    knative: str


class Mirrors(_Strict):
    """Where to read upstream bytes from instead (a proxy, Artifactory/Nexus/Harbor, an
    instructor's machine). Checksums are verified exactly as without a mirror."""

    # Release files, checksum files, chart indexes and Debian packages: upstream URL
    # prefix → mirror URL prefix, both ending in `/` (the longest matching prefix wins).
    files: dict[str, str] = {}
    # Images: registry (docker.io, registry.k8s.io, ghcr.io, …) → base URL of its mirror;
    # a path in it (a Harbor or Artifactory proxy project) prefixes the repository.
    registries: dict[str, str] = {}
    # A Debian mirror that signs its own index: the keyring apt checks it with (default:
    # Debian's archive keys). Only read when a pinned package has moved on.
    apt_keyring: Path | None = None


class Cache(_Strict):
    dir: Path = Path(".cache/artifacts")
    # Port the host serves the cache on, on its private-network address (apt, files, registry).
    port: Annotated[int, Field(ge=1024, le=65535, strict=True)] = 8790
    # Extra manifests merged over labkit/artifacts.yml (CI's stand-ins), relative to this file.
    overlays: list[Path] = []
    mirrors: Mirrors = Mirrors()


class Libvirt(_Strict):
    """libvirt provider options."""

    driver: Literal["auto", "kvm", "qemu"] = "auto"  # auto: kvm when /dev/kvm exists
    management_cidr: ipaddress.IPv4Network = ipaddress.IPv4Network("192.168.121.0/24")
    storage_pool: str = "default"


class Classroom(_Strict):
    """The class this kit joined (`./kit classroom.join`): the instructor's server fills the
    cache (every byte verified against the same pins), and, with ``share_progress``, gets
    this student's `lab.check` results and nothing else."""

    url: Annotated[str, Field(pattern=r"^https?://[A-Za-z0-9.:\[\]-]+/?$")]
    token: Annotated[str, Field(min_length=16, max_length=128, pattern=r"^[A-Za-z0-9_-]+$")]
    student: Annotated[str, Field(min_length=1, max_length=64)]
    share_progress: bool = True


class SandboxConfig(_Strict):
    """The whole of ``sandbox.yml``."""

    name: Annotated[str, Field(pattern=NAME_RE)] = "sandbox"
    # `small`: labkit/profiles/small.yml (8 GB laptops: every layer in 4.5 GiB of guest RAM).
    profile: Literal["default", "small"] = "default"
    provider: Literal["auto", "libvirt", "virtualbox"] = "auto"
    box: Box = Box()
    nodes: Annotated[list[Node], Field(min_length=1)]
    network: Network = Network()
    layers: Layers = Layers()
    addons: Addons = Addons()
    versions: Versions
    cache: Cache = Cache()
    libvirt: Libvirt = Libvirt()
    boot_timeout: Annotated[int, Field(ge=60, strict=True)] = 600
    classroom: Classroom | None = None
    # The control plane also runs workloads (no NoSchedule taint): the small profile's two
    # nodes, where draining the one worker must leave somewhere to go.
    control_plane_workloads: bool = False


# --------------------------------------------------------------------------- errors


@dataclass(frozen=True)
class Problem:
    """One thing wrong with the config: where, what value, why, and how to fix it."""

    where: str
    value: Any
    message: str
    fix: str

    def __str__(self) -> str:
        shown = "" if self.value is MISSING else f" = {self.value!r}"
        return f"{self.where}{shown}: {self.message}. Fix: {self.fix}"


MISSING: Any = object()


class ConfigError(KitError):
    """The config is invalid; ``problems`` lists every problem found."""

    def __init__(self, source: str, problems: Sequence[Problem]):
        self.source = source
        self.problems = list(problems)
        lines = "\n".join(f"  - {p}" for p in self.problems)
        super().__init__(f"{source} is not valid ({len(self.problems)} problem(s)); nothing was changed:\n{lines}")
