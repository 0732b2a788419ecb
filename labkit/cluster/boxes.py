"""The cluster's box in Vagrant: a local box built once and added, and the previous
box's libvirt volume retired after a rebuild (``labkit.cluster.box`` builds the image).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import TYPE_CHECKING

from labkit.cluster import box
from labkit.cluster.resolved import Resolved
from labkit.errors import KitError

if TYPE_CHECKING:
    from labkit.cluster.kit import Kit


def box_spec(resolved: Resolved) -> box.BoxSpec:
    b = resolved.config.box
    return box.BoxSpec(name=resolved.box_name, suite=b.suite, mirror=b.mirror)


def build(k: Kit, force: bool = False) -> Path:
    resolved = k.resolve()
    spec = box_spec(resolved)
    rebuilt = force or not box.box_file(k.root / ".cache", spec).exists()
    path = box.build(spec, k.root / ".cache", force=force, say=k.say)
    k.say(f"adding {path.name} to Vagrant as {spec.name}")
    k.vagrant().box_add(spec.name, path)
    if rebuilt and resolved.provider == "libvirt":
        retire_old_volumes(k, resolved)
    return path


def retire_old_volumes(k: Kit, resolved: Resolved) -> None:
    """libvirt keeps the previous box's base volume (a few hundred MB) after a rebuild.
    Delete it when no VM's disk is built on it, else say how to move those VMs."""
    from labkit.cluster import libvirt

    pool = resolved.config.libvirt.storage_pool
    try:
        if shutil.which("virsh") is None or not libvirt.pool_exists(pool):
            return
        removed, in_use = libvirt.retire_box_volumes(resolved.box_name, pool)
    except KitError as exc:  # libvirtd not running yet: nothing of the old box to start from
        k.say(f"    (could not look for the previous box's volume in libvirt: {exc})")
        return
    for vol in removed:
        k.say(f"    removed the previous box's base volume {vol} from libvirt (no VM used it)")
    for vol in in_use:
        k.say(f"    ! VMs still run on the previous box ({vol}); `./kit destroy --box-volume`, then `./kit up`, moves them to the new one")


def ensure(k: Kit, resolved: Resolved) -> None:
    """A local box must be built and added before `vagrant up` (official boxes download)."""
    if not resolved.config.box.local:
        return
    spec = box_spec(resolved)
    built = box.box_file(k.root / ".cache", spec)
    if spec.name in k.vagrant().box_names() and built.exists():
        return
    if not built.exists() and os.geteuid() != 0:
        raise KitError(f"the local box {spec.name} is not built yet: run `sudo ./kit box.build` once (about 3 minutes), then `./kit up`.")
    build(k)
