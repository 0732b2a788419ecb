"""The config's cross-field rules, one small function each, in the order their problems
are reported; ``route_collisions`` is shared with `./kit doctor` (one home per host rule).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable
from pathlib import Path

from labkit.cluster.resolved import HYPERVISOR_BRIDGE_PREFIXES, HostContext, ResolvedNode, Route, under
from labkit.cluster.schema import (
    ADDON_LAYER,
    KUBERNETES_CONTROL_PLANE_CPUS,
    LAYER_NEEDS,
    LAYERS,
    MEMORY_MINIMUMS,
    MISSING,
    SUPPORTED_SERIES,
    VERSION_RE,
    Mirrors,
    Problem,
    SandboxConfig,
)


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
                        MISSING,
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


def cross_checks(cfg: SandboxConfig, provider: str, host: HostContext) -> tuple[list[Problem], list[ResolvedNode]]:
    problems = [p for rule in RULES_BEFORE_ADDRESSES for p in rule(cfg, provider, host)]
    address_problems, resolved = resolve_addresses(cfg)
    problems += address_problems
    problems += [p for rule in RULES_AFTER_ADDRESSES for p in rule(cfg, provider, host)]
    return problems, resolved


def path_problems(cfg: SandboxConfig, root: Path) -> list[Problem]:
    """Paths that exist must be what they stand for (a folder for the cache, files for
    the overlays and the keyring); missing ones are made or fetched later."""
    problems = []
    cache = under(root, cfg.cache.dir)
    if cache.exists() and not cache.is_dir():
        problems.append(Problem("cache.dir", str(cfg.cache.dir), f"{cache} is a file, not a folder", "point cache.dir at a folder (it is created when missing)"))
    for i, overlay in enumerate(cfg.cache.overlays):
        if under(root, overlay).is_dir():
            problems.append(Problem(f"cache.overlays[{i}]", str(overlay), "is a folder, not a manifest file", "name the overlay's YAML file, e.g. …/standins.yml"))
    keyring = cfg.cache.mirrors.apt_keyring
    if keyring is not None and under(root, keyring).is_dir():
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
