"""What libvirt holds for a cluster (domains, networks, volumes), read with `virsh`.

Used by `./kit destroy` to report (and with ``--box`` remove) what is left, and by the
end-to-end suite to show that nothing is.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import dataclass

from labkit.errors import KitError

URI = "qemu:///system"


def _virsh(*args: str) -> str:
    if shutil.which("virsh") is None:
        raise KitError("virsh is not installed (Debian/Ubuntu: `sudo apt install libvirt-clients`)")
    proc = subprocess.run(["virsh", "-c", URI, *args], capture_output=True, text=True, timeout=60, check=False)
    if proc.returncode != 0:
        raise KitError(f"`virsh {' '.join(args)}` failed: {proc.stderr.strip()}")
    return proc.stdout


def _names(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if line.strip()]


@dataclass(frozen=True)
class Leftovers:
    domains: list[str]
    networks: list[str]
    volumes: list[str]

    def empty(self) -> bool:
        return not (self.domains or self.networks or self.volumes)

    def __str__(self) -> str:
        parts = [f"{kind}: {', '.join(items)}" for kind, items in (("domains", self.domains), ("networks", self.networks), ("volumes", self.volumes)) if items]
        return "; ".join(parts) or "nothing"


def pool_exists(pool: str) -> bool:
    return pool in _names(_virsh("pool-list", "--all", "--name"))


def volumes(pool: str) -> list[str]:
    if not pool_exists(pool):
        return []
    return parse_vol_list(_virsh("vol-list", pool))


def parse_vol_list(text: str) -> list[str]:
    """Volume names from `virsh vol-list POOL` (a header, a rule, then `name path` rows)."""
    lines = text.splitlines()
    rule = next((i for i, line in enumerate(lines) if set(line.strip()) == {"-"}), -1)
    return [line.split()[0] for line in lines[rule + 1 :] if line.strip()]


def leftovers(prefix: str, pool: str) -> Leftovers:
    """Domains, networks and volumes whose names start with the cluster's prefix."""
    doms = [d for d in _names(_virsh("list", "--all", "--name")) if d.startswith(prefix)]
    nets = [n for n in _names(_virsh("net-list", "--all", "--name")) if n.startswith(prefix)]
    vols = [v for v in volumes(pool) if v.startswith(prefix)]
    return Leftovers(doms, nets, vols)


def box_volume_prefix(box_name: str) -> str:
    """vagrant-libvirt names a box's base volume `<name with / as -VAGRANTSLASH->_vagrant_box_image_…`."""
    return box_name.replace("/", "-VAGRANTSLASH-") + "_vagrant_box_image"


def remove_box_volumes(box_name: str, pool: str) -> list[str]:
    removed = []
    for vol in volumes(pool):
        if vol.startswith(box_volume_prefix(box_name)):
            _virsh("vol-delete", vol, "--pool", pool)
            removed.append(vol)
    return removed


def backing_path(vol_xml: str) -> str | None:
    """The file a volume is a copy-on-write overlay of (`<backingStore><path>`), if any."""
    m = re.search(r"<backingStore>.*?<path>([^<]+)</path>", vol_xml, re.DOTALL)
    return m.group(1).strip() if m else None


def retire_box_volumes(box_name: str, pool: str) -> tuple[list[str], list[str]]:
    """After the box was rebuilt: delete its old base volumes in ``pool`` (a few hundred MB
    each: vagrant-libvirt uploads a rebuilt box under a new name and leaves the old one)
    that no VM's disk is an overlay of; return (removed, still in use by a VM's disk)."""
    removed, in_use = [], []
    names = volumes(pool)
    for base in [v for v in names if v.startswith(box_volume_prefix(box_name))]:
        path = _virsh("vol-path", base, "--pool", pool).strip()
        users = [v for v in names if v != base and backing_path(_virsh("vol-dumpxml", v, "--pool", pool)) == path]
        if users:
            in_use.append(base)
        else:
            _virsh("vol-delete", base, "--pool", pool)
            removed.append(base)
    return removed, in_use


def snapshots(domain: str) -> list[str]:
    """Snapshot names of one domain (fast: no Vagrant start-up)."""
    return _names(_virsh("snapshot-list", domain, "--name"))
