"""The systemd container image Molecule tests the roles in, built locally from Debian's
packages (no registry): debootstrap, a few units masked, imported into Docker.

The tag carries a hash of the recipe, so an unchanged recipe is built once.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path

from labkit.errors import KitError
from labkit.proc import require, run

PACKAGES = ("systemd", "systemd-sysv", "python3", "python3-apt", "sudo", "dbus", "iproute2", "procps", "ca-certificates", "kmod")
# Units that fail or do harm in a container: consoles, remounting /, first-boot prompts,
# kernel file systems, and systemd-sysctl (with a writable /proc/sys it would apply
# the image's sysctls to the namespace at boot, behind the roles' backs).
MASKED = (
    "getty@tty1.service",
    "console-getty.service",
    "systemd-remount-fs.service",
    "systemd-firstboot.service",
    "sys-kernel-config.mount",
    "sys-kernel-debug.mount",
    "sys-kernel-tracing.mount",
    "systemd-sysctl.service",
)


def tag_for(suite: str) -> str:
    recipe = json.dumps({"suite": suite, "packages": PACKAGES, "masked": MASKED, "v": 1}, sort_keys=True)
    return f"labkit/molecule-{suite}:{hashlib.sha256(recipe.encode()).hexdigest()[:12]}"


def exists(tag: str, env: dict[str, str]) -> bool:
    return subprocess.run(["docker", "image", "inspect", tag], env=env, capture_output=True, check=False).returncode == 0


def build(suite: str, mirror: str, docker_host: str, say: Callable[[str], None] = print) -> str:
    """Build (or reuse) the image for ``suite``; return its tag."""
    require("docker", "Install docker.io (CI does).")
    require("debootstrap", "Install debootstrap.")
    env = {**os.environ, "DOCKER_HOST": docker_host}
    tag = tag_for(suite)
    if exists(tag, env):
        say(f"image {tag} is up to date")
        return tag
    if os.geteuid() != 0:
        raise KitError("building the Molecule image needs root (debootstrap)")
    with tempfile.TemporaryDirectory(prefix="labkit-image-") as tmp:
        root = Path(tmp) / "rootfs"
        say(f"debootstrap {suite} for the Molecule image")
        run(["debootstrap", "--variant=minbase", "--include=" + ",".join(PACKAGES), suite, root, mirror], capture=True, what="debootstrap (molecule image)")
        (root / "etc/machine-id").write_text("")
        for unit in MASKED:
            link = root / "etc/systemd/system" / unit
            link.parent.mkdir(parents=True, exist_ok=True)
            if not link.is_symlink():
                link.symlink_to("/dev/null")
        run(["chroot", root, "apt-get", "clean"], capture=True, what="apt-get clean")
        archive = Path(tmp) / "rootfs.tar"
        run(["tar", "--numeric-owner", "-C", root, "-cf", archive, "."], capture=True, what="tar rootfs")
        say(f"docker import → {tag}")
        run(["docker", "import", "-c", 'CMD ["/sbin/init"]', "-c", "ENV container=docker", archive, tag], env=env, capture=True, what="docker import")
    return tag
