"""The base-box recipe: file edits on a fake root file system (no debootstrap here)."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from labkit.cluster import box

KEY = "ssh-rsa AAAAB3NzaC1yc2E vagrant insecure public key"


def make_root(tmp_path: Path) -> Path:
    root = tmp_path / "rootfs"
    (root / "etc/ssh").mkdir(parents=True)
    (root / "etc/ssh/ssh_host_ed25519_key").write_text("secret")
    (root / "etc/initramfs-tools").mkdir(parents=True)
    (root / "etc/initramfs-tools/initramfs.conf").write_text("MODULES=most\nBUSYBOX=auto\n")
    (root / "var/lib/dbus").mkdir(parents=True)
    (root / "var/lib/dbus/machine-id").write_text("0123")
    (root / "etc/machine-id").write_text("0123\n")
    return root


def test_root_fs_becomes_a_vagrant_base_box(tmp_path: Path) -> None:
    root = make_root(tmp_path)
    box.configure_rootfs(root, KEY)
    keys = root / "home/vagrant/.ssh/authorized_keys"
    assert keys.read_text() == KEY + "\n"
    assert stat.S_IMODE(keys.stat().st_mode) == 0o600
    assert stat.S_IMODE((root / "home/vagrant/.ssh").stat().st_mode) == 0o700
    assert (root / "etc/sudoers.d/vagrant").read_text() == "vagrant ALL=(ALL) NOPASSWD: ALL\n"
    assert stat.S_IMODE((root / "etc/sudoers.d/vagrant").stat().st_mode) == 0o440
    interfaces = (root / "etc/network/interfaces").read_text().splitlines()
    assert "iface eth0 inet dhcp" in interfaces and "auto eth0" in interfaces  # raised at boot, before sshd
    assert (root / "etc/fstab").read_text().startswith("LABEL=root\t/\text4")
    assert "ping_group_range = 0 2147483647" in (root / "etc/sysctl.d/60-labkit-ping.conf").read_text()


def test_clones_do_not_share_identity(tmp_path: Path) -> None:
    root = make_root(tmp_path)
    box.configure_rootfs(root, KEY)
    assert (root / "etc/machine-id").read_text() == ""
    assert not (root / "var/lib/dbus/machine-id").exists()
    assert not list((root / "etc/ssh").glob("ssh_host_*"))
    link = root / "etc/systemd/system/multi-user.target.wants/labkit-ssh-hostkeys.service"
    assert link.is_symlink()
    unit = (root / "etc/systemd/system/labkit-ssh-hostkeys.service").read_text()
    sshd = (root / "etc/ssh/sshd_config.d/labkit.conf").read_text()
    for kind in box.HOST_KEY_TYPES:  # each key the first boot makes is one sshd offers
        assert f"-t {kind} -N '' -f /etc/ssh/ssh_host_{kind}_key" in unit and f"HostKey /etc/ssh/ssh_host_{kind}_key\n" in sshd
    assert "ed25519" in box.HOST_KEY_TYPES and "rsa" not in unit


def test_initramfs_is_small(tmp_path: Path) -> None:
    root = make_root(tmp_path)
    box.configure_rootfs(root, KEY)
    conf = (root / "etc/initramfs-tools/initramfs.conf").read_text().splitlines()
    assert "MODULES=list" in conf and "MODULES=most" not in conf and "BUSYBOX=auto" in conf
    assert (root / "etc/initramfs-tools/modules").read_text().split() == list(box.INITRAMFS_MODULES)
    hook = root / "etc/initramfs-tools/hooks/labkit-no-udev"
    assert hook.stat().st_mode & 0o111 and hook.read_text() == box.INITRAMFS_HOOK
    dropin = (root / "etc/systemd/system/ifupdown-pre.service.d/labkit.conf").read_text()
    assert "ExecStart=\n" in dropin and "udevadm wait" in dropin and "udevadm settle" not in dropin


def test_the_initramfs_hook_removes_udev_and_keeps_what_finds_the_disk(tmp_path: Path) -> None:
    import subprocess

    dest = tmp_path / "initramfs"
    kept = ["scripts/init-top/keymap", "scripts/local", "usr/lib/modules/x/virtio_blk.ko", "usr/sbin/modprobe", "usr/sbin/blkid"]
    gone = ["scripts/init-top/udev", "scripts/init-bottom/udev", "usr/lib/udev/hwdb.bin", "usr/lib/udev/rules.d/60-block.rules", "usr/bin/udevadm", "usr/lib/systemd/systemd-udevd"]
    for name in kept + gone:
        (dest / name).parent.mkdir(parents=True, exist_ok=True)
        (dest / name).write_text("x")
    hook = tmp_path / "hook"
    hook.write_text(box.INITRAMFS_HOOK)
    hook.chmod(0o755)
    assert subprocess.run([hook, "prereqs"], check=True, capture_output=True).stdout == b""
    assert (dest / "usr/bin/udevadm").exists()  # asked for prereqs only: nothing done
    subprocess.run([hook], check=True, env={"DESTDIR": str(dest), "PATH": "/usr/bin:/bin"})
    assert sorted(p.relative_to(dest).as_posix() for p in dest.rglob("*") if p.is_file()) == sorted(kept)


def test_configure_twice_is_harmless(tmp_path: Path) -> None:
    root = make_root(tmp_path)
    box.configure_rootfs(root, KEY)
    box.configure_rootfs(root, KEY)
    assert (root / "etc/initramfs-tools/initramfs.conf").read_text().count("MODULES=") == 1


def test_box_file_name_changes_with_the_recipe(tmp_path: Path) -> None:
    a = box.BoxSpec("labkit/trixie", "trixie", "http://deb.debian.org/debian")
    b = box.BoxSpec("labkit/trixie", "bookworm", "http://deb.debian.org/debian")
    assert box.box_file(tmp_path, a) != box.box_file(tmp_path, b)
    assert box.box_file(tmp_path, a).name.startswith("labkit-trixie-trixie-amd64-")


def test_box_vagrantfile_boots_the_shipped_kernel() -> None:
    assert 'File.join(File.dirname(__FILE__), "vmlinuz")' in box.BOX_VAGRANTFILE
    assert "root=/dev/vda" in box.BOX_VAGRANTFILE
    assert "disabled: true" in box.BOX_VAGRANTFILE


def test_what_debootstrap_left_mounted_is_unmounted_deepest_first(tmp_path: Path) -> None:
    work = tmp_path / "labkit box"
    mounts = tmp_path / "mounts"
    escaped = str(work).replace(" ", "\\040")
    mounts.write_text(
        f"proc /proc proc rw 0 0\nproc {escaped}/rootfs/proc proc rw 0 0\nsysfs {escaped}/rootfs/proc/sys/fs/binfmt_misc binfmt_misc rw 0 0\ntmpfs {escaped}-other/x tmpfs rw 0 0\n"
    )
    unmounted: list[str] = []
    found = box.unmount_below(work, mounts=mounts, umount=unmounted.append)  # a recording test double of umount
    assert unmounted == [f"{work}/rootfs/proc/sys/fs/binfmt_misc", f"{work}/rootfs/proc"]
    assert sorted(found) == sorted(unmounted)
    assert box.unmount_below(tmp_path / "elsewhere", mounts=mounts, umount=unmounted.append) == []


def test_units_a_lab_node_does_not_need_are_masked(tmp_path: Path) -> None:
    root = make_root(tmp_path)
    box.configure_rootfs(root, KEY)
    for unit in ("apt-daily.timer", "apt-daily-upgrade.timer", "modprobe@drm.service"):
        link = root / "etc/systemd/system" / unit
        assert link.is_symlink() and str(link.readlink()) == "/dev/null", unit
    assert "quiet" in box.KERNEL_CMDLINE.split()
    # Never a unit the nodes offer: logins (SSH, the consoles), the tracing mounts, the
    # kernel modules, the journal, the network.
    kept = ("ssh.service", "systemd-logind.service", "getty@.service", "serial-getty@.service", "sys-kernel-debug.mount", "sys-kernel-tracing.mount")
    kept += ("systemd-modules-load.service", "systemd-journald.service", "networking.service", "ifup@.service", "systemd-udevd.service")
    assert not set(kept) & set(box.MASKED_UNITS)
    for generator in box.DISABLED_GENERATORS:
        assert str((root / "etc/systemd/system-generators" / generator).readlink()) == "/dev/null"
    assert not {"systemd-fstab-generator", "systemd-getty-generator"} & set(box.DISABLED_GENERATORS)  # mounts and consoles stay
    assert all(not (root / "etc/systemd/system" / unit).exists() for unit in kept)
    blacklist = (root / "etc/modprobe.d/labkit-node.conf").read_text().splitlines()
    assert "blacklist floppy" in blacklist
    # Never a driver the nodes need: their disk and NIC, the file systems, container networking.
    for needed in (*box.INITRAMFS_MODULES, "overlay", "br_netfilter", "button", "evdev"):
        assert f"blacklist {needed}" not in blacklist


def test_the_box_ships_its_caches_up_to_date_with_usr(tmp_path: Path) -> None:
    root = make_root(tmp_path)
    (root / "usr").mkdir(exist_ok=True)
    (root / "var").mkdir(exist_ok=True)
    os.utime(root / "usr", ns=(1_700_000_000_123_456_789, 1_700_000_000_123_456_789))
    box.mark_updated(root)
    usr = (root / "usr").stat().st_mtime_ns
    assert usr == 1_700_000_000_000_000_000  # whole seconds: what the ext4 image keeps
    for folder in ("etc", "var"):
        stamp = root / folder / ".updated"
        # systemd's ConditionNeedsUpdate= is true only when /usr is newer than the stamp.
        assert stamp.stat().st_mtime_ns == usr
        assert f"TIMESTAMP_NSEC={usr}" in stamp.read_text()
