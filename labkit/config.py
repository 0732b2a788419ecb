"""The cluster description: load ``sandbox.yml`` (+ local override), validate, resolve.

This is the ground floor of the kit: it imports nothing else of ours but the error
type.  Everything that touches the machine reads the *resolved* form produced here
(``Resolved.to_dict()``), written once per run to ``.state/resolved.json``: the
Vagrantfile, the Ansible inventory and every task.  No node, IP or version is written
anywhere else.

Bad input fails before anything is created, with one line per problem naming the
field, the bad value and the fix (``ConfigError``).  Host facts that the rules need
(the providers installed, the host's routes, the OS) are passed in as plain values,
so every rule is unit-tested without touching the host.
"""

from __future__ import annotations

import difflib
import ipaddress
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

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


class SandboxConfig(_Strict):
    """The whole of ``sandbox.yml``."""

    name: Annotated[str, Field(pattern=NAME_RE)] = "sandbox"
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


# --------------------------------------------------------------------------- errors


@dataclass(frozen=True)
class Problem:
    """One thing wrong with the config: where, what value, why, and how to fix it."""

    where: str
    value: Any
    message: str
    fix: str

    def __str__(self) -> str:
        shown = "" if self.value is _MISSING else f" = {self.value!r}"
        return f"{self.where}{shown}: {self.message}. Fix: {self.fix}"


_MISSING: Any = object()


class ConfigError(KitError):
    """The config is invalid; ``problems`` lists every problem found."""

    def __init__(self, source: str, problems: Sequence[Problem]):
        self.source = source
        self.problems = list(problems)
        lines = "\n".join(f"  - {p}" for p in self.problems)
        super().__init__(f"{source} is not valid ({len(self.problems)} problem(s)); nothing was changed:\n{lines}")


# --------------------------------------------------------------------------- loading


class _UniqueKeyLoader(yaml.SafeLoader):
    """A safe loader that refuses duplicate keys (PyYAML silently keeps the last)."""


def _construct_mapping(loader: _UniqueKeyLoader, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
    seen: dict[Any, int] = {}
    for key_node, _ in node.value:
        if key_node.tag == "tag:yaml.org,2002:merge":
            continue  # `<<: *anchor`, YAML's merge key: PyYAML merges it below
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise yaml.constructor.ConstructorError(None, None, f"duplicate key {key!r} (first at line {seen[key] + 1})", key_node.start_mark)
        seen[key] = key_node.start_mark.line
    return loader.construct_mapping(node, deep)


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


MAX_CONFIG_BYTES = 1 << 20  # a cluster description is a few kilobytes
MAX_CONFIG_VALUES = 20_000  # values after YAML aliases are expanded (a "billion laughs" stops here)
MAX_CONFIG_DEPTH = 50


def _expanded_size(root: yaml.Node) -> tuple[int, int]:
    """How many values the node graph stands for once aliases are expanded, and how deep it
    nests, walking at most MAX_CONFIG_VALUES of them (so the walk itself is bounded)."""
    count, deepest, stack = 0, 0, [(root, 1)]
    while stack and count <= MAX_CONFIG_VALUES and deepest <= MAX_CONFIG_DEPTH:
        node, depth = stack.pop()
        count += 1
        deepest = max(deepest, depth)
        if isinstance(node, yaml.SequenceNode):
            stack.extend((child, depth + 1) for child in node.value)
        elif isinstance(node, yaml.MappingNode):
            stack.extend((part, depth + 1) for pair in node.value for part in pair)
    return count, deepest


def _read_problem(path: Path, what: str, fix: str) -> ConfigError:
    return ConfigError(path.name, [Problem(path.name, _MISSING, what, fix)])


def read_yaml(path: Path) -> dict[str, Any]:
    """Read one YAML mapping; syntax errors name the file, line and column. Bounded in time
    and memory whatever the file holds: size, alias expansion and nesting are capped."""
    try:
        if path.is_dir():
            raise _read_problem(path, "is a folder, not a file", f"point LABKIT_CONFIG at a YAML file, not at {path}")
        with path.open("rb") as fh:
            raw = fh.read(MAX_CONFIG_BYTES + 1)
    except OSError as exc:
        raise KitError(f"cannot read {path}: {exc.strerror}. Create it (see README.md) or set LABKIT_CONFIG.") from exc
    if len(raw) > MAX_CONFIG_BYTES:
        raise _read_problem(path, f"is larger than {MAX_CONFIG_BYTES >> 10} KiB", "a cluster description is a few kilobytes: is this the right file?")
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise _read_problem(path, "is UTF-16 text", "save it as UTF-8 (most editors: File → Save with encoding → UTF-8)")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise _read_problem(path, f"is not UTF-8 text (byte {exc.start}, line {line})", "save it as UTF-8 (most editors: File → Save with encoding → UTF-8)") from None
    if "\x00" in text:
        raise _read_problem(path, "holds a NUL character: it is not a text file", "check that LABKIT_CONFIG names your YAML file")
    try:
        node = yaml.compose(text, Loader=_UniqueKeyLoader)
        if node is not None:
            count, depth = _expanded_size(node)
            if count > MAX_CONFIG_VALUES:
                raise _read_problem(path, f"stands for more than {MAX_CONFIG_VALUES} values once its YAML aliases are expanded", "write the values out, or nest fewer aliases")
            if depth > MAX_CONFIG_DEPTH:
                raise _read_problem(path, f"nests deeper than {MAX_CONFIG_DEPTH} levels", "sandbox.yml is at most four levels deep: check the indentation")
        data = yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"{path.name} line {mark.line + 1}, column {mark.column + 1}" if mark else path.name
        raise ConfigError(
            path.name,
            [
                Problem(
                    where, _MISSING, f"malformed YAML: {exc.problem or exc.context}", "correct the YAML syntax at that line (indent with spaces, quote values that contain ': ')"
                )
            ],
        ) from exc
    except RecursionError:
        raise _read_problem(path, f"nests deeper than {MAX_CONFIG_DEPTH} levels", "sandbox.yml is at most four levels deep: check the indentation") from None
    except (yaml.YAMLError, ValueError) as exc:
        raise _read_problem(path, f"cannot be read as YAML ({str(exc).splitlines()[0] if str(exc) else type(exc).__name__})", "correct the YAML syntax") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(
            path.name, [Problem(path.name, _MISSING, f"the top level is a {type(data).__name__}, not a mapping", "write `key: value` pairs at the top level, as in sandbox.yml")]
        )
    # `x-…` keys hold YAML anchors for the rest of the file (as in Compose files).
    return {k: v for k, v in data.items() if not (isinstance(k, str) and k.startswith("x-"))}


def deep_merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """Merge ``override`` over ``base``: mappings merge key by key, anything else is replaced."""
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def replaced_lists(base: Mapping[str, Any], override: Mapping[str, Any], where: str = "") -> list[str]:
    """What an override's lists replace whole (lists are not merged): one line per list,
    naming the entries it drops, so a partial `nodes` list never drops nodes silently."""
    notes = []
    for key, value in override.items():
        here = f"{where}.{key}" if where else str(key)
        old = base.get(key)
        if isinstance(value, Mapping) and isinstance(old, Mapping):
            notes += replaced_lists(old, value, here)
        elif isinstance(value, list) and isinstance(old, list) and value != old:

            def label(item: Any) -> str:
                return str(item.get("name")) if isinstance(item, Mapping) and "name" in item else repr(item)

            kept = {label(i) for i in value}
            dropped = [label(i) for i in old if label(i) not in kept]
            notes.append(f"{here}: the override's {len(value)} entries replace the {len(old)} of the base" + (f" (dropped: {', '.join(dropped)})" if dropped else ""))
    return notes


def override_path(config_path: Path) -> Path:
    """``sandbox.yml`` → ``sandbox.local.yml`` beside it (git-ignored)."""
    return config_path.with_name(f"{config_path.stem}.local{config_path.suffix}")


# --------------------------------------------------------------------------- pydantic → problems


def _where(loc: Iterable[Any]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out or "(top level)"


def _known_keys(model: type[BaseModel], loc: Sequence[Any]) -> list[str]:
    current: Any = model
    for part in loc[:-1]:
        if isinstance(part, int):
            continue
        fld = current.model_fields.get(part) if isinstance(current, type) and issubclass(current, BaseModel) else None
        if fld is None:
            return []
        ann = fld.annotation
        args = getattr(ann, "__args__", ())
        current = next((a for a in (ann, *args) if isinstance(a, type) and issubclass(a, BaseModel)), None)
        if current is None:
            return []
    return list(current.model_fields) if isinstance(current, type) and issubclass(current, BaseModel) else []


def _problem_from_pydantic(err: Mapping[str, Any]) -> Problem:
    loc = tuple(err["loc"])
    where = _where(loc)
    kind = err["type"]
    value = err.get("input", _MISSING)
    ctx = err.get("ctx") or {}
    if kind == "extra_forbidden":
        known = _known_keys(SandboxConfig, loc)
        close = difflib.get_close_matches(str(loc[-1]), known, n=1)
        hint = f"did you mean `{close[0]}`?" if close else f"known keys here: {', '.join(known)}"
        return Problem(where, _MISSING, "unknown key", f"remove it or correct its spelling ({hint})")
    if kind == "missing":
        return Problem(where, _MISSING, "required key is missing", f"add `{loc[-1]}` (see sandbox.yml for an example)")
    if kind == "literal_error":
        return Problem(where, value, "not an allowed value", f"use one of {ctx.get('expected')}")
    if kind in ("int_type", "int_parsing", "int_from_float"):
        return Problem(where, value, "must be a whole number", "write a number without quotes or units, e.g. 2048")
    if kind in ("bool_type", "bool_parsing"):
        return Problem(where, value, "must be true or false", "write true or false")
    if kind in ("string_type",):
        return Problem(where, value, "must be a string", 'quote the value, e.g. "1.36.2"')
    if kind in ("list_type",):
        return Problem(where, value, "must be a list", "write it as a YAML list, one `- name: …` entry per node")
    if kind in ("model_type", "dict_type", "model_attributes_type"):
        return Problem(where, value, "must be a mapping of keys to values", "write it as `key: value` lines indented under it")
    if kind == "too_short":
        return Problem(where, value, "must not be empty", "list at least one control-plane node")
    if kind == "greater_than_equal":
        return Problem(where, value, f"is below the minimum {ctx.get('ge')}", f"use at least {ctx.get('ge')}")
    if kind == "less_than_equal":
        return Problem(where, value, f"is above the maximum {ctx.get('le')}", f"use at most {ctx.get('le')}")
    if kind == "string_pattern_mismatch":
        return Problem(where, value, "is not a valid name", "use 1 to 32 lowercase letters, digits and '-', starting with a letter and not ending with '-' (it becomes a hostname)")
    if kind.startswith("ip_v4"):
        if isinstance(value, str) and "/" in value:
            try:
                fixed = ipaddress.IPv4Network(value, strict=False)
            except ValueError:
                fixed = None
            if fixed is not None and str(fixed) != value:
                return Problem(where, value, "has host bits set", f"use the network address {fixed}")
        return Problem(where, value, "is not a valid IPv4 address or network", "write it like 192.168.56.11 (address) or 192.168.56.0/24 (network)")
    return Problem(where, value, err.get("msg", kind), "see the comments in sandbox.yml")


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
        return _under(self.root, self.config.cache.dir)

    @property
    def cache_host(self) -> str:
        """The host's address on the private network, where the nodes reach the cache."""
        return str(next(iter(self.config.network.cidr.hosts())))

    @property
    def apt_keyring(self) -> Path | None:
        k = self.config.cache.mirrors.apt_keyring
        return None if k is None else _under(self.root, k)

    @property
    def overlays(self) -> list[Path]:
        return [_under(self.root, p) for p in self.config.cache.overlays]

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


def _pick_provider(requested: str, host: HostContext) -> str:
    if requested != "auto":
        return requested
    if host.system == "Linux" and "libvirt" in host.providers:
        return "libvirt"
    if "virtualbox" in host.providers:
        return "virtualbox"
    return "libvirt" if host.system == "Linux" else "virtualbox"


def _network_size(cfg: SandboxConfig, provider: str, host: HostContext) -> list[Problem]:
    net = cfg.network.cidr
    if net.prefixlen <= 29:
        return []
    usable = len(list(net.hosts()))
    return [
        Problem(
            "network.cidr",
            str(net),
            f"a /{net.prefixlen} network has {usable} usable address(es); the host takes the first and every node one more",
            "use a /24, e.g. 192.168.56.0/24",
        )
    ]


def _one_control_plane(cfg: SandboxConfig, provider: str, host: HostContext) -> list[Problem]:
    cps = [i for i, n in enumerate(cfg.nodes) if n.role == "control-plane"]
    if not cps:
        return [Problem("nodes", [n.name for n in cfg.nodes], "no node has role control-plane", "give exactly one node `role: control-plane`")]
    if len(cps) > 1:
        why = "more than one control-plane node (the kit builds a single control plane)"
        return [Problem(f"nodes[{cps[1]}].role", "control-plane", why, "make the other nodes `role: worker`")]
    return []


def _unique_names(cfg: SandboxConfig, provider: str, host: HostContext) -> list[Problem]:
    problems = []
    seen: dict[str, int] = {}
    for i, node in enumerate(cfg.nodes):
        if node.name in seen:
            problems.append(Problem(f"nodes[{i}].name", node.name, f"duplicate node name (also nodes[{seen[node.name]}])", "give every node its own name"))
        seen.setdefault(node.name, i)
    return problems


def resolve_addresses(cfg: SandboxConfig) -> tuple[list[Problem], list[ResolvedNode]]:
    """Each node's address, given or derived in order from network.first_host: inside the
    CIDR, unique, not the host's (the network's first address)."""
    problems: list[Problem] = []
    resolved: list[ResolvedNode] = []
    net = cfg.network.cidr
    host_ip = next(iter(net.hosts()), None)
    hosts = list(net.hosts()) if net.num_addresses <= 65536 else []
    seen_ips: dict[ipaddress.IPv4Address, int] = {}
    derived_index = 0
    for i, node in enumerate(cfg.nodes):
        if node.ip is not None:
            ip = node.ip
            if ip not in net or ip in (net.network_address, net.broadcast_address):
                problems.append(Problem(f"nodes[{i}].ip", str(ip), f"is not a usable address in network.cidr {net}", f"pick an address inside {net}, or drop `ip` to derive it"))
                continue
            if ip == host_ip:
                problems.append(Problem(f"nodes[{i}].ip", str(ip), "is the host's own address on the private network", f"pick another address in {net} (the host keeps {host_ip})"))
                continue
        else:
            offset = cfg.network.first_host - 1 + derived_index
            derived_index += 1
            if offset >= len(hosts):
                problems.append(
                    Problem(
                        f"nodes[{i}].ip",
                        _MISSING,
                        f"network.cidr {net} has no room for a derived address (first_host {cfg.network.first_host})",
                        "use a larger network.cidr or a smaller network.first_host",
                    )
                )
                continue
            ip = hosts[offset]
        if ip in seen_ips:
            problems.append(Problem(f"nodes[{i}].ip", str(ip), f"same address as nodes[{seen_ips[ip]}]", "give every node its own address (or drop `ip` to derive them)"))
        seen_ips.setdefault(ip, i)
        resolved.append(ResolvedNode(node.name, node.role, node.cpus, node.memory, str(ip)))
    return problems, resolved


def _layer_dependencies(cfg: SandboxConfig, provider: str, host: HostContext) -> list[Problem]:
    layers = cfg.layers
    problems = [
        Problem(f"layers.{layer}", True, f"needs the {needs} layer", f"set layers.{needs}: true, or layers.{layer}: false")
        for layer, needs in LAYER_NEEDS.items()
        if getattr(layers, layer) and not getattr(layers, needs)
    ]
    problems += [
        Problem(f"addons.{addon}", True, f"needs the {layer} layer", f"set layers.{layer}: true, or addons.{addon}: false")
        for addon, layer in ADDON_LAYER.items()
        if getattr(cfg.addons, addon) and not getattr(layers, layer)
    ]
    problems += [
        Problem(f"addons.{addon}", True, "reads the mesh's metrics from Prometheus", "set addons.prometheus: true as well")
        for addon in ("kiali", "grafana")
        if getattr(cfg.addons, addon) and not cfg.addons.prometheus
    ]
    return problems


def _pinned_versions(cfg: SandboxConfig, provider: str, host: HostContext) -> list[Problem]:
    problems = []
    if cfg.versions.cni != "flannel":
        problems.append(Problem("versions.cni", cfg.versions.cni, "is not installed by this version of the kit (only flannel is)", "set versions.cni: flannel"))
    for key, value in cfg.versions.model_dump().items():
        if key == "cni":
            continue
        if not VERSION_RE.match(value):
            problems.append(Problem(f"versions.{key}", value, "is not an exact pinned version", "write the full x.y.z version you tested, e.g. 1.36.2 (never `latest` or `1.36`)"))
            continue
        series = SUPPORTED_SERIES.get(key)
        if series and ".".join(value.split(".")[:2]) not in series:
            problems.append(Problem(f"versions.{key}", value, f"is outside the series this kit supports ({', '.join(s + '.x' for s in series)})", f"use a {series[-1]}.x release"))
    return problems


def _node_resources(cfg: SandboxConfig, provider: str, host: HostContext) -> list[Problem]:
    """Per-layer memory minimums (the largest of the enabled layers) and kubeadm's CPUs."""
    problems = []
    active = ["base", *[layer for layer in LAYERS if getattr(cfg.layers, layer)]]
    for i, node in enumerate(cfg.nodes):
        need, why = max((MEMORY_MINIMUMS[layer][node.role], layer) for layer in active)
        if node.memory < need:
            problems.append(
                Problem(
                    f"nodes[{i}].memory",
                    node.memory,
                    f"is below the {need} MiB a {node.role} needs for the {why} layer",
                    f"give {node.name} at least {need} (MiB), or disable that layer",
                )
            )
        if cfg.layers.kubernetes and node.role == "control-plane" and node.cpus < KUBERNETES_CONTROL_PLANE_CPUS:
            problems.append(Problem(f"nodes[{i}].cpus", node.cpus, "kubeadm needs at least 2 CPUs on the control plane", "set cpus: 2 (or more)"))
    return problems


def _named_networks(cfg: SandboxConfig, provider: str) -> dict[str, ipaddress.IPv4Network]:
    named = {"network.cidr": cfg.network.cidr, "network.pod_cidr": cfg.network.pod_cidr, "network.service_cidr": cfg.network.service_cidr}
    if provider == "libvirt":
        named["libvirt.management_cidr"] = cfg.libvirt.management_cidr
    return named


def _networks_disjoint(cfg: SandboxConfig, provider: str, host: HostContext) -> list[Problem]:
    named = _named_networks(cfg, provider)
    keys = list(named)
    return [
        Problem(b, str(named[b]), f"overlaps {a} {named[a]}", f"choose a range that does not overlap {named[a]}")
        for a_i, a in enumerate(keys)
        for b in keys[a_i + 1 :]
        if named[a].overlaps(named[b])
    ]


def _virtualbox_range(cfg: SandboxConfig, provider: str, host: HostContext) -> list[Problem]:
    net = cfg.network.cidr
    if provider != "virtualbox" or any(net.subnet_of(r) for r in host.virtualbox_ranges):
        return []
    allowed = ", ".join(map(str, host.virtualbox_ranges))
    return [
        Problem(
            "network.cidr",
            str(net),
            f"VirtualBox 7 refuses host-only networks outside {allowed}",
            "use a network inside 192.168.56.0/21 (e.g. 192.168.56.0/24), or allow the range in /etc/vbox/networks.conf",
        )
    ]


def _host_routes(cfg: SandboxConfig, provider: str, host: HostContext) -> list[Problem]:
    named = _named_networks(cfg, provider)
    return [
        Problem(key, str(named[key]), f"collides with the host route {route.network} on {route.dev}", "choose a range the host does not use (see `ip route`)")
        for key in ("network.cidr", "libvirt.management_cidr")
        if key in named
        for route in route_collisions(named[key], host.routes)
    ]


# The rules across fields, one function each (like doctor's checks), in the order their
# problems are reported; node addresses come between the names and the layers.
RULES_BEFORE_ADDRESSES = (_network_size, _one_control_plane, _unique_names)
RULES_AFTER_ADDRESSES = (_layer_dependencies, _pinned_versions, _node_resources, _networks_disjoint, _virtualbox_range, _host_routes)


def _cross_checks(cfg: SandboxConfig, provider: str, host: HostContext) -> tuple[list[Problem], list[ResolvedNode]]:
    problems = [p for rule in RULES_BEFORE_ADDRESSES for p in rule(cfg, provider, host)]
    address_problems, resolved = resolve_addresses(cfg)
    problems += address_problems
    problems += [p for rule in RULES_AFTER_ADDRESSES for p in rule(cfg, provider, host)]
    return problems, resolved


def _under(root: Path, path: Path) -> Path:
    """A path of the config: `~` expanded, relative ones taken from the config's folder."""
    path = path.expanduser()
    return path if path.is_absolute() else root / path


def path_problems(cfg: SandboxConfig, root: Path) -> list[Problem]:
    """Paths that exist must be what they stand for (a folder for the cache, files for
    the overlays and the keyring); missing ones are made or fetched later."""
    problems = []
    cache = _under(root, cfg.cache.dir)
    if cache.exists() and not cache.is_dir():
        problems.append(Problem("cache.dir", str(cfg.cache.dir), f"{cache} is a file, not a folder", "point cache.dir at a folder (it is created when missing)"))
    for i, overlay in enumerate(cfg.cache.overlays):
        if _under(root, overlay).is_dir():
            problems.append(Problem(f"cache.overlays[{i}]", str(overlay), "is a folder, not a manifest file", "name the overlay's YAML file, e.g. …/standins.yml"))
    keyring = cfg.cache.mirrors.apt_keyring
    if keyring is not None and _under(root, keyring).is_dir():
        problems.append(Problem("cache.mirrors.apt_keyring", str(keyring), "is a folder, not a keyring file", "name the keyring file your Debian mirror signs with"))
    return problems


_URL_PREFIX = re.compile(r"^(https?|file)://[^\s/?#]*(/[^\s?#]*)?/$")
_REGISTRY = re.compile(r"^[a-z0-9]([a-z0-9.-]*[a-z0-9])?(:\d{1,5})?$")
_REGISTRY_URL = re.compile(r"^https?://[^\s/?#]+(/[^\s?#]*)?$")


def mirror_problems(mirrors: Mirrors) -> list[Problem]:
    """URL prefixes that end in `/` (so `https://github.com` cannot match
    `https://github.com.example`), and registry names as image references write them.
    (The keyring is checked where it is read: it may be made after the config.)"""
    problems = []
    for upstream, mirror in mirrors.files.items():
        for label, url in (("upstream prefix", upstream), ("mirror", mirror)):
            if not _URL_PREFIX.match(url):
                fixed = url if url.endswith("/") else url + "/"
                problems.append(
                    Problem(
                        f"cache.mirrors.files[{upstream!r}]",
                        url,
                        f"the {label} is not an http(s):// or file:// URL prefix ending in /",
                        f"write it like {fixed!r}" if _URL_PREFIX.match(fixed) else "write both sides like 'https://github.com/': 'https://mirror.example.com/github/'",
                    )
                )
    for registry, base in mirrors.registries.items():
        if not _REGISTRY.match(registry):
            problems.append(
                Problem(
                    f"cache.mirrors.registries[{registry!r}]",
                    registry,
                    "is not a registry name",
                    "use the registry as image names write it, e.g. docker.io, registry.k8s.io, ghcr.io",
                )
            )
        if not _REGISTRY_URL.match(base):
            problems.append(
                Problem(
                    f"cache.mirrors.registries[{registry!r}]", base, "is not an http(s):// base URL", "write the mirror's base URL, e.g. https://harbor.example.com/dockerhub-proxy"
                )
            )
    return problems


def route_collisions(ours: ipaddress.IPv4Network, routes: Iterable[Route]) -> list[Route]:
    """Host routes that overlap ``ours``, ignoring default routes and the hypervisor's
    own bridge for exactly this network (left by an earlier `up`)."""
    hits = []
    for route in routes:
        if route.network.prefixlen == 0 or not route.network.overlaps(ours):
            continue
        if route.network == ours and route.dev.startswith(HYPERVISOR_BRIDGE_PREFIXES):
            continue
        hits.append(route)
    return hits


def validate(data: Mapping[str, Any], *, source: str, host: HostContext, root: Path, sources: Sequence[str] = ()) -> Resolved:
    """Validate merged config data and resolve it, or raise ConfigError listing every problem."""
    try:
        cfg = SandboxConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(source, [_problem_from_pydantic(e) for e in exc.errors()]) from None
    provider = _pick_provider(cfg.provider, host)
    problems, nodes = _cross_checks(cfg, provider, host)
    if cfg.box.name is None and host.arch not in DEFAULT_BOXES:
        problems.append(Problem("box.name", _MISSING, f"there is no default box for a {host.arch} host", f"name a Debian 13 box built for {host.arch} in box.name"))
    if cfg.box.local and host.arch != "amd64":
        problems.append(Problem("box.local", True, f"box.build makes amd64 boxes; this host is {host.arch}", "set box.local: false (the default box fits your machine)"))
    if cfg.box.local and cfg.box.name is None:
        problems.append(Problem("box.name", _MISSING, "a local box needs its name in Vagrant", "set box.name: labkit/trixie (the name `./kit box.build` adds it as)"))
    if cfg.box.local and provider != "libvirt":
        problems.append(
            Problem(
                "box.local",
                True,
                f"the locally built box exists for libvirt only, and the provider is {provider}",
                "set box.local: false and use an official box such as debian/trixie64",
            )
        )
    problems += mirror_problems(cfg.cache.mirrors)
    problems += path_problems(cfg, root)
    if problems:
        raise ConfigError(source, problems)
    driver = cfg.libvirt.driver
    if driver == "auto":
        driver = "kvm" if host.has_kvm else "qemu"
    return Resolved(cfg, provider, tuple(nodes), driver, tuple(sources or (source,)), root, arch=host.arch)


def load(config_path: Path, host: HostContext) -> Resolved:
    """Read ``config_path`` and its ``.local`` override, merge, validate and resolve."""
    data = read_yaml(config_path)
    sources = [str(config_path)]
    local = override_path(config_path)
    notes: list[str] = []
    if local.exists():
        override = read_yaml(local)
        notes = replaced_lists(data, override)
        data = deep_merge(data, override)
        sources.append(str(local))
    source = " + ".join(Path(s).name for s in sources)
    resolved = validate(data, source=source, host=host, root=config_path.resolve().parent, sources=sources)
    if resolved.config.layers.kubernetes and not resolved.workers:
        notes.append(f"{resolved.control_plane.name} is the only node: its NoSchedule taint is left off, so the layers' workloads run on the control plane")
    resolved.extra["notes"] = notes
    return resolved
