"""Build a Debian Vagrant box for libvirt from Debian's packages (no box download).

The recipe (see README.md, "A box without downloads"): debootstrap a minimal Debian
root file system, make it a Vagrant base box (``vagrant`` user with Vagrant's insecure
key and passwordless sudo, eth0 on DHCP, host keys regenerated on first boot, an empty
machine-id so clones differ), write it into a partitionless ext4 image converted to
compressed qcow2, and boot it with a direct kernel boot (kernel and initrd ship in the
box).  Every step writes into a scratch folder; the finished ``.box`` is moved into
place at the end, so an interrupted build leaves nothing half-done behind.

The module is longer than most (~340 lines) because the recipe's constants (the packages,
the masked units, the box's Vagrantfile, the first-boot unit) are written here, beside
the steps that use them: the recipe reads in one file.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import tarfile
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from labkit.errors import KitError
from labkit.proc import require, run

# Packages of the base box: the minimum Vagrant and Ansible need, plus what the
# direct kernel boot and ifupdown-based networking of Vagrant's Debian guest need.
# Debian's cloud kernel: built for VMs (virtio, KVM/QEMU and the clouds' hypervisors), with
# every feature a Kubernetes node uses (cgroups v2, namespaces, overlayfs, netfilter,
# conntrack, bridge, br_netfilter, VXLAN, veth, IPVS) but not the drivers for real
# hardware, whose probing at boot costs seconds under emulation.
BOX_PACKAGES = (
    "linux-image-cloud-amd64",
    "systemd-sysv",
    "openssh-server",
    "sudo",
    "python3",
    "python3-apt",
    "ifupdown",
    "isc-dhcp-client",
    "iproute2",
    "iputils-ping",
    "udev",
    "dbus",
    "kmod",
    "procps",
    "initramfs-tools",
    "ca-certificates",
)
# Modules the initramfs needs to find the root disk on virtio; keeps it small.
INITRAMFS_MODULES = ("virtio_pci", "virtio_blk", "virtio_net", "ext4")
# An initramfs-tools hook (/etc/initramfs-tools/hooks run after the packages' own, before
# the scripts' ORDER files are written): the initramfs only has to find /dev/vda, which the
# kernel's devtmpfs creates as soon as the listed modules are loaded, so it carries no udev
# (its daemon, coldplug and settle, and its 13 MB hardware database, cost seconds at every
# boot under emulation). The root file system's udev starts as usual.
INITRAMFS_HOOK = """\
#!/bin/sh
# labkit box: the initramfs finds a virtio disk through devtmpfs; udev runs after switch_root.
[ "$1" = prereqs ] && exit 0
rm -rf "${DESTDIR}/scripts/init-top/udev" "${DESTDIR}/scripts/init-bottom/udev" "${DESTDIR}/usr/lib/udev" "${DESTDIR}/etc/udev"
rm -f "${DESTDIR}/usr/bin/udevadm" "${DESTDIR}/usr/lib/systemd/systemd-udevd"
"""
# ifupdown-pre.service waits for udev to settle (every device's coldplug event, 9-13 s
# under emulation, udevd itself starting late on the one busy CPU) before
# networking.service raises the `auto` interfaces. This drop-in waits only until each of
# those interfaces exists (udevadm wait --initialized=no): the initramfs loads virtio_net,
# so eth0 is there from the start, and with net.ifnames=0 udev renames nothing. DHCP, and
# sshd after network.target, are ready seconds sooner; udev's hotplug ifup@eth0 then finds
# eth0 up.
IFUPDOWN_PRE_DROPIN = """\
# labkit box: wait until the auto interfaces exist, not for every device (see labkit/cluster/box.py).
[Service]
ExecStart=
ExecStart=/bin/sh -c 'if [ "$CONFIGURE_INTERFACES" != "no" ]; then for i in $(ifquery --read-environment --list --exclude=lo); do \
udevadm wait --initialized=no --timeout=170 "/sys/class/net/$i"; done; fi'
"""
DISK_GIB = 20
# `quiet`: under software emulation every byte written to the serial console is a trap
# into QEMU; the kernel's and systemd's boot messages cost seconds (they stay in the journal).
KERNEL_CMDLINE = "root=/dev/vda rw console=ttyS0 net.ifnames=0 quiet"
VAGRANT_INSECURE_KEY_GLOBS = (
    "/usr/share/rubygems-integration/all/gems/vagrant-*/keys/vagrant.pub",
    "/opt/vagrant/embedded/gems/gems/vagrant-*/keys/vagrant.pub",
)

BOX_VAGRANTFILE = f"""\
# Vagrantfile shipped inside the labkit box: direct kernel boot (the image has no
# partition table and no boot loader), no synced folder (Ansible runs from the host).
Vagrant.configure("2") do |config|
  config.vm.synced_folder ".", "/vagrant", disabled: true
  config.vm.provider :libvirt do |lv|
    lv.kernel = File.join(File.dirname(__FILE__), "vmlinuz")
    lv.initrd = File.join(File.dirname(__FILE__), "initrd.img")
    lv.cmd_line = "{KERNEL_CMDLINE}"
    lv.disk_bus = "virtio"
  end
end
"""

# Let every user ping (ICMP datagram sockets), as on a stock Debian install: the
# image's files carry no capabilities, so ping cannot fall back to a raw socket.
PING_SYSCTL = "net.ipv4.ping_group_range = 0 2147483647\n"

# Units a lab node does not need, masked in the box: apt's daily timers (the nodes have no
# internet, and a timer taking dpkg's lock in the middle of provisioning or a lab step
# stalls it), module loads for hardware the VMs do not have (a display, EFI storage), and
# file systems no layer of the kit uses: binfmt_misc (running other CPUs' binaries), FUSE,
# configfs (kernel objects configured from user space) and hugetlbfs at /dev/hugepages
# (the kubelet reads huge pages from /sys). Under emulation every early unit competes for
# the one CPU with those SSH waits for. `systemctl unmask` brings one back.
MASKED_UNITS = (
    "apt-daily.timer", "apt-daily-upgrade.timer", "modprobe@drm.service", "modprobe@efi_pstore.service",
    "systemd-binfmt.service", "proc-sys-fs-binfmt_misc.automount", "proc-sys-fs-binfmt_misc.mount",
    "sys-fs-fuse-connections.mount", "modprobe@fuse.service", "sys-kernel-config.mount", "modprobe@configfs.service",
    "dev-hugepages.mount",
)  # fmt: skip
# systemd generators for what a lab node does not have, disabled as systemd.generator(7)
# says (a link to /dev/null in /etc/systemd/system-generators): a GPT partition table (the
# disk has none), hibernation (no swap: the kubelet wants none), a TPM, /etc/rc.local, SSH
# over AF_VSOCK or socket activation (ssh.service runs sshd), offline updates, and SysV init
# scripts (every one in the box has a native unit; the roles install systemd units). Each
# is a program systemd runs before it starts any unit: under emulation, seconds in all.
# The fstab, getty, debug and run generators stay.
DISABLED_GENERATORS = (
    "systemd-gpt-auto-generator", "systemd-hibernate-resume-generator", "systemd-tpm2-generator",
    "systemd-rc-local-generator", "systemd-ssh-generator", "systemd-system-update-generator", "systemd-sysv-generator",
)  # fmt: skip
# Drivers for devices a headless lab node does not use, kept from loading when udev finds
# their devices at boot (each load is a signature check and a relocation: under emulation,
# these made up most of udev's seconds of CPU at boot). `modprobe NAME` still loads one.
BLACKLISTED_MODULES = (
    "floppy", "pcspkr", "psmouse", "serio_raw", "i2c_piix4", "ata_piix",
    "uhci_hcd", "ehci_pci", "ehci_hcd",
    "kvm_amd", "kvm_intel", "intel_rapl_msr", "intel_rapl_common", "ccp",
    "vmw_vmci", "vmw_vsock_vmci_transport", "efi_pstore",
)  # fmt: skip
# Each new VM makes its own SSH host keys at first boot (clones must not share them):
# Ed25519 and ECDSA, the keys OpenSSH and Vagrant's net-ssh pick first. Not RSA: a 3072-bit
# RSA key took most of this unit's 10 s under emulation, and sshd (and the first login)
# waited for it.
HOST_KEY_TYPES = ("ed25519", "ecdsa")
FIRST_BOOT_UNIT = f"""\
[Unit]
Description=Generate this machine's own SSH host keys (labkit box)
ConditionPathExists=!/etc/ssh/ssh_host_ed25519_key
Before=ssh.service

[Service]
Type=oneshot
{"".join(f"ExecStart=/usr/bin/ssh-keygen -q -t {t} -N '' -f /etc/ssh/ssh_host_{t}_key{chr(10)}" for t in HOST_KEY_TYPES)}
[Install]
WantedBy=multi-user.target
"""


@dataclass(frozen=True)
class BoxSpec:
    """What to build: the Debian suite, the mirror and the box name in Vagrant."""

    name: str
    suite: str
    mirror: str
    arch: str = "amd64"

    def recipe_id(self) -> str:
        """A hash of everything that shapes the box; a change means a rebuild."""
        recipe = json.dumps(
            {
                "suite": self.suite,
                "arch": self.arch,
                "packages": BOX_PACKAGES,
                "modules": INITRAMFS_MODULES,
                "initramfs_hook": INITRAMFS_HOOK,
                "ifupdown_pre": IFUPDOWN_PRE_DROPIN,
                "cmdline": KERNEL_CMDLINE,
                "vagrantfile": BOX_VAGRANTFILE,
                "unit": FIRST_BOOT_UNIT,
                "sysctl": PING_SYSCTL,
                "disk": DISK_GIB,
                "masked": MASKED_UNITS,
                "generators": DISABLED_GENERATORS,
                "blacklisted": BLACKLISTED_MODULES,
                "format": 8,
            },
            sort_keys=True,
        )
        return hashlib.sha256(recipe.encode()).hexdigest()[:16]


def box_file(cache_dir: Path, spec: BoxSpec) -> Path:
    """Where the built box lives: its name carries the recipe hash."""
    slug = spec.name.replace("/", "-")
    return cache_dir / "boxes" / f"{slug}-{spec.suite}-{spec.arch}-{spec.recipe_id()}.box"


def vagrant_insecure_key() -> Path:
    """Vagrant's well-known public key, shipped with Vagrant itself."""
    import glob

    for pattern in VAGRANT_INSECURE_KEY_GLOBS:
        found = sorted(glob.glob(pattern))
        if found:
            return Path(found[-1])
    raise KitError("cannot find Vagrant's insecure public key (keys/vagrant.pub in Vagrant's gem). Is Vagrant installed?")


def _write(path: Path, text: str, mode: int = 0o644) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(mode)


def _to_dev_null(link: Path) -> None:
    link.parent.mkdir(parents=True, exist_ok=True)
    if link.is_symlink() or link.exists():
        link.unlink()
    link.symlink_to("/dev/null")


def configure_rootfs(root: Path, pubkey: str) -> None:
    """Turn a debootstrapped tree into a Vagrant base box (pure file edits, tested)."""
    _write(root / "etc/hostname", "labkit\n")
    _write(root / "etc/hosts", "127.0.0.1\tlocalhost\n127.0.1.1\tlabkit\n::1\tlocalhost ip6-localhost ip6-loopback\n")
    _write(root / "etc/fstab", "LABEL=root\t/\text4\terrors=remount-ro\t0\t1\n")
    _write(
        root / "etc/network/interfaces",
        "# labkit box: the first NIC (Vagrant's management network) on DHCP, raised at boot by\n"
        "# networking.service (auto: before sshd starts, not when udev's coldplug reaches it,\n"
        "# seconds later under emulation) and again if it is hot-plugged.\n"
        "# Vagrant appends the private network itself.\n"
        "source /etc/network/interfaces.d/*\n\nauto lo\niface lo inet loopback\n\n"
        "auto eth0\nallow-hotplug eth0\niface eth0 inet dhcp\n",
    )
    _write(root / "etc/initramfs-tools/modules", "\n".join(INITRAMFS_MODULES) + "\n")
    _write(root / "etc/initramfs-tools/hooks/labkit-no-udev", INITRAMFS_HOOK, 0o755)
    _write(root / "etc/systemd/system/ifupdown-pre.service.d/labkit.conf", IFUPDOWN_PRE_DROPIN)
    conf = root / "etc/initramfs-tools/initramfs.conf"
    text = conf.read_text() if conf.exists() else ""
    lines = [ln for ln in text.splitlines() if not ln.startswith("MODULES=")]
    _write(conf, "\n".join([*lines, "MODULES=list"]) + "\n")
    _write(root / "etc/sysctl.d/60-labkit-ping.conf", PING_SYSCTL)
    _write(root / "etc/sudoers.d/vagrant", "vagrant ALL=(ALL) NOPASSWD: ALL\n", 0o440)
    host_keys = "".join(f"HostKey /etc/ssh/ssh_host_{t}_key\n" for t in HOST_KEY_TYPES)  # the keys the first boot makes
    _write(root / "etc/ssh/sshd_config.d/labkit.conf", "UseDNS no\nPasswordAuthentication no\n" + host_keys)
    _write(root / "etc/systemd/system/labkit-ssh-hostkeys.service", FIRST_BOOT_UNIT)
    wants = root / "etc/systemd/system/multi-user.target.wants/labkit-ssh-hostkeys.service"
    wants.parent.mkdir(parents=True, exist_ok=True)
    if not wants.is_symlink():
        wants.symlink_to("/etc/systemd/system/labkit-ssh-hostkeys.service")
    _write(
        root / "etc/modprobe.d/labkit-node.conf",
        "# labkit box: drivers for devices a headless lab node does not use (see labkit/box.py).\n" + "".join(f"blacklist {m}\n" for m in BLACKLISTED_MODULES),
    )
    for link in [root / "etc/systemd/system-generators" / g for g in DISABLED_GENERATORS] + [root / "etc/systemd/system" / u for u in MASKED_UNITS]:
        _to_dev_null(link)  # systemd's way to disable a generator or mask a unit
    for key in (root / "etc/ssh").glob("ssh_host_*"):
        key.unlink()
    # An empty machine-id makes systemd create a new one per VM (else clones share
    # one, and with it their DHCP client id and address).
    _write(root / "etc/machine-id", "", 0o444)
    dbus_id = root / "var/lib/dbus/machine-id"
    if dbus_id.exists() or dbus_id.is_symlink():
        dbus_id.unlink()
    ssh_dir = root / "home/vagrant/.ssh"
    _write(ssh_dir / "authorized_keys", pubkey.strip() + "\n", 0o600)
    ssh_dir.chmod(0o700)


UPDATED_STAMP = "# Written by labkit's box build, as systemd-update-done would at first boot:\n# the box ships its caches up to date.\nTIMESTAMP_NSEC={ns}\n"


def mark_updated(root: Path) -> None:
    """Do at build time what a first boot would (ldconfig's cache and the journal's catalog
    are rebuilt in the chroot first), and stamp /etc and /var as up to date with /usr, so
    the units with ConditionNeedsUpdate= (ldconfig, the catalog update, update-done) do
    not run on every new VM's first boot: seconds each under emulation."""
    usr = root / "usr"
    whole = (usr.stat().st_mtime_ns // 1_000_000_000) * 1_000_000_000  # the image keeps whole seconds
    os.utime(usr, ns=(whole, whole))
    for folder in ("etc", "var"):
        stamp = root / folder / ".updated"
        stamp.write_text(UPDATED_STAMP.format(ns=whole))
        stamp.chmod(0o644)
        os.utime(stamp, ns=(whole, whole))


def unmount_below(path: Path, mounts: Path = Path("/proc/self/mounts"), umount: Callable[[str], object] | None = None) -> list[str]:
    """Unmount whatever is mounted at or below ``path``, deepest first, and return the mount
    points. debootstrap can leave the target's /proc mounted; mkfs.ext4 cannot copy it, and
    removing the work folder through it would reach the host's /proc."""
    where = str(path.resolve())
    points = []
    for line in mounts.read_text().splitlines():
        fields = line.split()
        if len(fields) < 2:
            continue
        point = re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), fields[1])  # \040 is a space
        if point == where or point.startswith(where + "/"):
            points.append(point)
    for point in sorted(points, key=len, reverse=True):
        if umount is not None:
            umount(point)
        else:
            # --lazy: detached at once even while busy, so nothing below is reachable.
            subprocess.run(["umount", "--lazy", point], capture_output=True, check=False)
    return points


def _chroot(root: Path, *argv: str, what: str) -> None:
    run(["chroot", root, *argv], capture=True, what=what, env={**os.environ, "LC_ALL": "C", "DEBIAN_FRONTEND": "noninteractive"})


def build(spec: BoxSpec, cache_dir: Path, *, force: bool = False, say: Callable[[str], None] = print) -> Path:
    """Build the box file for ``spec`` unless an identical one exists; return its path."""
    target = box_file(cache_dir, spec)
    if target.exists() and not force:
        say(f"box {spec.name} is up to date: {target}")
        return target
    if os.geteuid() != 0:
        raise KitError("building the box needs root (debootstrap, chroot). Run it with sudo: `sudo ./kit box.build`.")
    for tool, pkg in (("debootstrap", "debootstrap"), ("qemu-img", "qemu-utils"), ("mkfs.ext4", "e2fsprogs")):
        require(tool, f"Install it: `apt-get install {pkg}`.")
    pubkey = vagrant_insecure_key().read_text()
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="labkit-box-", dir=target.parent) as tmp:
        try:
            _build_in(Path(tmp), spec, target, pubkey, say)
        finally:
            unmount_below(Path(tmp))  # before the folder is removed
    return target


def _build_in(work: Path, spec: BoxSpec, target: Path, pubkey: str, say: Callable[[str], None]) -> None:
    t0 = time.monotonic()
    steps: list[tuple[str, Callable[[], None]]] = [
        (f"debootstrap {spec.suite} ({len(BOX_PACKAGES)} packages) from {spec.mirror} — takes a few minutes", lambda: _debootstrap(work / "rootfs", spec, say)),
        ("configure the base box (vagrant user, network, small initramfs)", lambda: _base_box(work, pubkey)),
        (f"write the {DISK_GIB} GiB ext4 image and compress it to qcow2", lambda: _disk_image(work)),
        ("pack the box", lambda: _pack(work, spec, target)),
    ]
    for n, (what, step) in enumerate(steps, 1):
        t = time.monotonic()
        say(f"[{n}/{len(steps)}] {what}")
        step()
        say(f"      done in {time.monotonic() - t:.0f} s")
    say(f"box built in {time.monotonic() - t0:.0f} s: {target} ({target.stat().st_size / 1e6:.0f} MB)")


def _debootstrap(root: Path, spec: BoxSpec, say: Callable[[str], None]) -> None:
    argv = ["debootstrap", "--variant=minbase", f"--arch={spec.arch}", "--include=" + ",".join(BOX_PACKAGES), spec.suite, root, spec.mirror]
    run(argv, capture=True, what="debootstrap")
    left = unmount_below(root)
    if left:
        say(f"      debootstrap left {', '.join(left)} mounted: unmounted")


def _base_box(work: Path, pubkey: str) -> None:
    """The root file system made a Vagrant base box; its kernel and initrd copied out (the
    box boots them directly)."""
    root = work / "rootfs"
    configure_rootfs(root, pubkey)
    _chroot(root, "useradd", "--create-home", "--shell", "/bin/bash", "--uid", "1000", "vagrant", what="useradd vagrant")
    _chroot(root, "chown", "-R", "vagrant:vagrant", "/home/vagrant", what="chown /home/vagrant")
    _chroot(root, "update-initramfs", "-u", "-k", "all", what="update-initramfs")
    _chroot(root, "apt-get", "clean", what="apt-get clean")
    _chroot(root, "ldconfig", what="ldconfig")
    _chroot(root, "journalctl", "--update-catalog", what="journalctl --update-catalog")
    mark_updated(root)
    kernels = sorted((root / "boot").glob("vmlinuz-*"))
    initrds = sorted((root / "boot").glob("initrd.img-*"))
    if not kernels or not initrds:
        raise KitError("debootstrap produced no kernel/initrd in /boot; is linux-image-cloud-amd64 installable from the mirror?")
    shutil.copy2(kernels[-1], work / "vmlinuz")
    shutil.copy2(initrds[-1], work / "initrd.img")


def _disk_image(work: Path) -> None:
    root, raw = work / "rootfs", work / "root.ext4"
    with raw.open("wb") as fh:
        fh.truncate(DISK_GIB * 1024**3)
    unmount_below(root)  # a chroot step may have mounted something too: mkfs.ext4 -d copies the tree
    run(["mkfs.ext4", "-q", "-L", "root", "-d", root, raw], capture=True, what="mkfs.ext4")
    run(["qemu-img", "convert", "-c", "-O", "qcow2", raw, work / "box.img"], capture=True, what="qemu-img convert")
    raw.unlink()


def _pack(work: Path, spec: BoxSpec, target: Path) -> None:
    (work / "metadata.json").write_text(json.dumps({"provider": "libvirt", "format": "qcow2", "virtual_size": DISK_GIB, "labkit_recipe": spec.recipe_id()}))
    (work / "Vagrantfile").write_text(BOX_VAGRANTFILE)
    partial = work / "out.box"
    with tarfile.open(partial, "w") as tar:
        for name in ("metadata.json", "Vagrantfile", "vmlinuz", "initrd.img", "box.img"):
            tar.add(work / name, arcname=name)
    for stale in target.parent.glob(f"{spec.name.replace('/', '-')}-{spec.suite}-{spec.arch}-*.box"):
        stale.unlink()
    partial.replace(target)
