"""Facts about the host, gathered in one place so every rule that uses them is testable.

``gather()`` reads the real host; tests build ``HostFacts`` by hand (a fake host).
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import os
import platform
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from labkit.cluster.resolved import HostContext, Route
from labkit.cluster.schema import VIRTUALBOX_HOSTONLY_RANGE


@dataclass(frozen=True)
class HostFacts:
    """Everything ``doctor`` and config resolution need to know about the host."""

    system: str = "Linux"
    vagrant_version: str | None = None
    vagrant_plugins: tuple[str, ...] = ()
    virtualbox_version: str | None = None
    libvirt_reachable: bool = False
    libvirt_error: str = ""
    cpu_virt_flags: bool = False
    dev_kvm: bool = False
    mem_available_mib: int = 0
    cpus: int = 1
    disk_free_gib: float = 0.0
    routes: tuple[Route, ...] = ()
    vbox_networks_conf: str | None = None
    python_version: tuple[int, int] = (3, 11)
    ansible_version: str | None = None
    arch: str = "amd64"
    extra: dict[str, str] = field(default_factory=dict)

    def providers(self) -> tuple[str, ...]:
        return providers(bool(self.vagrant_version), self.vagrant_plugins, bool(self.virtualbox_version))

    def context(self) -> HostContext:
        """The subset config validation uses."""
        return HostContext(
            system=self.system, providers=self.providers(), routes=self.routes, has_kvm=self.dev_kvm, arch=self.arch, virtualbox_ranges=virtualbox_ranges(self.vbox_networks_conf)
        )


def arch() -> str:
    """The Debian name of this machine's architecture (the VMs run the same)."""
    machine = platform.machine().lower()
    return {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64"}.get(machine, machine)


VBOX_NETWORKS_CONF = Path("/etc/vbox/networks.conf")


def virtualbox_ranges(conf: str | None) -> tuple[ipaddress.IPv4Network, ...]:
    """The host-only ranges VirtualBox 7 allows: /etc/vbox/networks.conf's `* RANGE …`
    lines when the file exists, else its default 192.168.56.0/21. The one reading of this
    rule: config validation and doctor both use it."""
    if conf is None:
        return (VIRTUALBOX_HOSTONLY_RANGE,)
    allowed = []
    for line in conf.splitlines():
        parts = line.split()
        if parts and parts[0] == "*":
            for item in parts[1:]:
                try:
                    allowed.append(ipaddress.IPv4Network(item, strict=False))
                except ValueError:
                    continue
    return tuple(allowed)


def _vbox_conf() -> str | None:
    try:
        return VBOX_NETWORKS_CONF.read_text(errors="replace") if VBOX_NETWORKS_CONF.is_file() else None
    except OSError:
        return None


def _out(argv: list[str], timeout: float = 20) -> str | None:
    if shutil.which(argv[0]) is None:
        return None
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return proc.stdout if proc.returncode == 0 else None


def parse_routes(ip_json: str) -> tuple[Route, ...]:
    """Routes from `ip -j -4 route` output (default routes kept as 0.0.0.0/0)."""
    routes = []
    for entry in json.loads(ip_json or "[]"):
        dst = entry.get("dst", "")
        if dst == "default":
            dst = "0.0.0.0/0"
        try:
            net = ipaddress.IPv4Network(dst if "/" in dst else f"{dst}/32", strict=False)
        except ValueError:
            continue
        routes.append(Route(net, entry.get("dev", "?")))
    return tuple(routes)


def parse_vagrant_plugins(text: str) -> tuple[str, ...]:
    """Plugin names from `vagrant plugin list` (`vagrant-libvirt (0.11.2, system)`)."""
    return tuple(m.group(1) for m in re.finditer(r"^([\w.-]+) \(", text, re.MULTILINE))


def providers(has_vagrant: bool, vagrant_plugins: tuple[str, ...], has_virtualbox: bool) -> tuple[str, ...]:
    """The providers this host can run VMs with: the one rule, for config resolution and
    for `./kit doctor` (libvirt needs Vagrant with the vagrant-libvirt plugin)."""
    found = []
    if has_vagrant and "vagrant-libvirt" in vagrant_plugins:
        found.append("libvirt")
    if has_virtualbox:
        found.append("virtualbox")
    return tuple(found)


def routes() -> tuple[Route, ...]:
    return parse_routes(_out(["ip", "-j", "-4", "route"]) or "[]")


def context(cache_dir: Path | None = None) -> HostContext:
    """The cheap host facts config validation needs (no slow probes; with ``cache_dir``,
    Vagrant's plugin list is read from there while nothing that defines it has changed)."""
    has_vagrant = shutil.which("vagrant") is not None
    plugins = _vagrant_plugins(cache_dir) if has_vagrant else ()
    found = providers(has_vagrant, plugins, shutil.which("VBoxManage") is not None)
    return HostContext(
        system=platform.system(),
        providers=found,
        routes=routes(),
        has_kvm=Path("/dev/kvm").exists(),
        arch=arch(),
        virtualbox_ranges=virtualbox_ranges(_vbox_conf()),
    )


# Where Vagrant records its installed plugins: the user's, a Debian system package's, the
# official installer's. Their state (and the vagrant executable's) decides the list.
PLUGIN_STATE_FILES = ("{home}/plugins.json", "/usr/share/vagrant-plugins/plugins.json", "/opt/vagrant/embedded/plugins.json")


def plugin_fingerprint(vagrant: str, home: str) -> str:
    """What `vagrant plugin list` depends on: the executable and the plugin state files
    (path, size and modification time of each; absent ones count as absent)."""
    parts = []
    for path in (vagrant, *(p.format(home=home) for p in PLUGIN_STATE_FILES)):
        try:
            st = os.stat(path)
            parts.append(f"{path}:{st.st_size}:{st.st_mtime_ns}")
        except OSError:
            parts.append(f"{path}:-")
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()


def _vagrant_plugins(cache_dir: Path | None = None) -> tuple[str, ...]:
    """`vagrant plugin list` (Ruby: most of a second even on a fast host), remembered in
    ``cache_dir`` under the fingerprint of what decides it. Only a list naming a provider
    plugin is remembered: a missing plugin is always asked again, so installing one is seen
    at once."""
    vagrant = shutil.which("vagrant")
    if vagrant is None:
        return ()
    memo = cache_dir / "vagrant-plugins.json" if cache_dir is not None else None
    key = plugin_fingerprint(os.path.realpath(vagrant), os.environ.get("VAGRANT_HOME") or os.path.expanduser("~/.vagrant.d"))
    if memo is not None:
        try:
            saved = json.loads(memo.read_text())
            if saved.get("key") == key:
                return tuple(str(p) for p in saved["plugins"])
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            pass
    plugins = parse_vagrant_plugins(_out(["vagrant", "plugin", "list"], timeout=60) or "")
    if memo is not None and "vagrant-libvirt" in plugins:
        try:
            memo.parent.mkdir(parents=True, exist_ok=True)
            memo.write_text(json.dumps({"key": key, "plugins": list(plugins)}) + "\n")
        except OSError:
            pass  # a read-only state folder: ask Vagrant every time
    return plugins


def _meminfo_available_mib() -> int:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) // 1024
    except OSError:
        pass
    return 0


def _vagrant_version() -> str | None:
    m = re.search(r"(\d+\.\d+\.\d+)", _out(["vagrant", "--version"], timeout=60) or "")
    return m.group(1) if m else None


def _libvirt() -> tuple[bool, str]:
    """Whether libvirt's system daemon answers, else why not (its last line of output)."""
    if not shutil.which("virsh"):
        return False, "virsh is not installed"
    try:
        proc = subprocess.run(["virsh", "-c", "qemu:///system", "version"], capture_output=True, text=True, timeout=20, check=False)
    except subprocess.TimeoutExpired:
        return False, "virsh did not answer within 20 s"
    said = (proc.stderr or proc.stdout).strip().splitlines()
    return proc.returncode == 0, (said[-1] if proc.returncode != 0 and said else "")


def _cpu_virt_flags() -> bool:
    try:
        cpuinfo = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return bool(re.search(r"^flags\s*:.*\b(vmx|svm)\b", cpuinfo, re.MULTILINE))


def _ansible_version() -> str | None:
    try:
        from ansible.release import __version__
    except ImportError:
        return None
    return str(__version__)


def gather(state_dir: Path) -> HostFacts:
    """Read the real host, every fact `./kit doctor` checks; ``HostFacts.context()`` is the
    part config resolution uses, so doctor resolves the config from the same reading."""
    vagrant_version = _vagrant_version()
    vbox = _out(["VBoxManage", "--version"])
    libvirt_ok, libvirt_err = _libvirt()
    return HostFacts(
        system=platform.system(),
        vagrant_version=vagrant_version,
        vagrant_plugins=_vagrant_plugins(state_dir) if vagrant_version else (),
        virtualbox_version=vbox.strip() if vbox else None,
        libvirt_reachable=libvirt_ok,
        libvirt_error=libvirt_err,
        cpu_virt_flags=_cpu_virt_flags(),
        dev_kvm=Path("/dev/kvm").exists(),
        mem_available_mib=_meminfo_available_mib(),
        cpus=os.cpu_count() or 1,
        disk_free_gib=shutil.disk_usage(state_dir if state_dir.exists() else Path.cwd()).free / 1024**3,
        routes=routes(),
        vbox_networks_conf=_vbox_conf(),
        python_version=sys.version_info[:2],
        ansible_version=_ansible_version(),
        arch=arch(),
    )
