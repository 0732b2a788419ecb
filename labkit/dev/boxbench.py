"""`./kit box.bench BOX...`: boot each box to SSH, side by side in one run (prints, asserts nothing).

Each boot is a new VM's first boot, as on a student's `./kit up`: a fresh copy-on-write
overlay over the box's disk, its own kernel, initrd and command line (read from the box's
Vagrantfile), under QEMU software emulation, 1 CPU and 1 GiB like CI's nodes. The clock
runs from QEMU's start until `ssh vagrant@… true` succeeds with Vagrant's key. The guest
has user-mode networking with `restrict=on` (no traffic leaves QEMU) and one forwarded
port on 127.0.0.1 for SSH. Boots alternate between the boxes (A, B, A, B…) so a slower
moment of the host does not favour one; the medians are compared as a ratio.
"""

from __future__ import annotations

import re
import shutil
import socket
import statistics
import subprocess
import tarfile
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from labkit.errors import KitError
from labkit.proc import require

QEMU = "qemu-system-x86_64"


@dataclass
class Booted:
    box: Path
    seconds: list[float] = field(default_factory=list)
    analyze: list[str] = field(default_factory=list)  # the guest's `systemd-analyze` per boot

    @property
    def median(self) -> float:
        return statistics.median(self.seconds)


def cmdline_of(vagrantfile: str) -> str:
    """The kernel command line a box's Vagrantfile gives libvirt (`lv.cmd_line = "…"`)."""
    m = re.search(r'cmd_line\s*=\s*"([^"]*)"', vagrantfile)
    if m is None:
        raise KitError("the box's Vagrantfile sets no kernel command line (lv.cmd_line): is it a labkit box?")
    return m.group(1)


def unpack(box: Path, into: Path) -> str:
    """Extract a labkit box (box.img, vmlinuz, initrd.img, Vagrantfile); return its command line."""
    if not box.is_file():
        raise KitError(f"{box} does not exist: build one with `./kit box.build`")
    try:
        with tarfile.open(box) as tar:
            names = set(tar.getnames())
            missing = {"box.img", "vmlinuz", "initrd.img", "Vagrantfile"} - names
            if missing:
                raise KitError(f"{box} is not a labkit box: it lacks {', '.join(sorted(missing))}")
            for name in ("box.img", "vmlinuz", "initrd.img", "Vagrantfile"):
                tar.extract(name, into, filter="data")
    except tarfile.TarError as exc:
        raise KitError(f"{box} is not a readable box file: {exc}") from None
    return cmdline_of((into / "Vagrantfile").read_text())


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def qemu_argv(folder: Path, disk: Path, cmdline: str, port: int, memory_mib: int = 1024) -> list[str]:
    return [
        QEMU,
        "-accel", "tcg",
        "-m", str(memory_mib),
        "-smp", "1",
        "-nodefaults",
        "-display", "none",
        "-serial", f"file:{folder / 'console.log'}",
        "-monitor", "none",
        "-kernel", str(folder / "vmlinuz"),
        "-initrd", str(folder / "initrd.img"),
        "-append", cmdline,
        "-drive", f"file={disk},if=virtio,format=qcow2",
        "-netdev", f"user,id=n0,restrict=on,hostfwd=tcp:127.0.0.1:{port}-:22",
        "-device", "virtio-net-pci,netdev=n0",
    ]  # fmt: skip


def ssh_argv(key: Path, port: int, command: str) -> list[str]:
    return [
        "ssh", "-i", str(key), "-p", str(port),
        "-o", "BatchMode=yes", "-o", "ConnectTimeout=5", "-o", "StrictHostKeyChecking=no",
        "-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR",
        "vagrant@127.0.0.1", command,
    ]  # fmt: skip


def banner(port: int, timeout: float = 2.0) -> bool:
    """Whether an SSH server answers with its banner on 127.0.0.1:``port``."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as conn:
            return conn.recv(8).startswith(b"SSH-")
    except OSError:
        return False


def boot_once(folder: Path, cmdline: str, key: Path, timeout: float) -> tuple[float, str]:
    """One first boot of a fresh overlay; seconds to SSH and the guest's systemd-analyze."""
    disk = folder / "overlay.qcow2"
    disk.unlink(missing_ok=True)
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", "-b", str(folder / "box.img"), "-F", "qcow2", str(disk)], check=True, capture_output=True)
    port = free_port()
    start = time.monotonic()
    vm = subprocess.Popen(qemu_argv(folder, disk, cmdline, port), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        while True:
            if vm.poll() is not None:
                raise KitError(f"QEMU ended before SSH answered (exit {vm.returncode}): {(vm.stderr.read() if vm.stderr else '').strip()[-400:]}")
            if time.monotonic() - start > timeout:
                raise KitError(f"no SSH after {timeout:.0f} s; the console is in {folder / 'console.log'}")
            # Ask ssh only once sshd's banner arrives: a connection opened earlier waits in
            # QEMU's user network while the guest has no address, and times out.
            if banner(port) and subprocess.run(ssh_argv(key, port, "true"), capture_output=True, timeout=120, check=False).returncode == 0:
                seconds = time.monotonic() - start
                break
            time.sleep(0.2)
        # systemd may still be finishing units that SSH did not wait for.
        wait = "systemctl is-system-running --wait >/dev/null; systemd-analyze | head -n 1"
        analyze = subprocess.run(ssh_argv(key, port, wait), capture_output=True, text=True, timeout=300, check=False)
        return seconds, analyze.stdout.strip()
    finally:
        vm.terminate()  # the QEMU this function started, by its PID
        try:
            vm.wait(timeout=30)
        except subprocess.TimeoutExpired:
            vm.kill()
            vm.wait(timeout=30)
        disk.unlink(missing_ok=True)


def run(boxes: list[Path], key: Path, runs: int = 3, timeout: float = 900, say: Callable[[str], None] = print) -> list[Booted]:
    if not boxes:
        raise KitError("name at least one box file (e.g. .cache/boxes/*.box)")
    if runs < 1:
        raise KitError(f"--runs {runs}: boot each box at least once (--runs 1 or more)")
    require(QEMU, "Install it: `apt-get install qemu-system-x86`.")
    require("qemu-img", "Install it: `apt-get install qemu-utils`.")
    results = [Booted(b) for b in boxes]
    with tempfile.TemporaryDirectory(prefix="labkit-boxbench-") as tmp:
        folders, cmdlines = [], []
        for i, b in enumerate(boxes):
            folder = Path(tmp) / str(i)
            folder.mkdir()
            cmdlines.append(unpack(b, folder))
            folders.append(folder)
        for n in range(runs):
            for r, folder, cmdline in zip(results, folders, cmdlines, strict=True):
                seconds, analyze = boot_once(folder, cmdline, key, timeout)
                r.seconds.append(seconds)
                r.analyze.append(analyze)
                say(f"  boot {n + 1}/{runs} of {r.box.name}: SSH after {seconds:.1f} s ({analyze or 'no systemd-analyze'})")
    for line in report(results):
        say(line)
    return results


def report(results: list[Booted]) -> list[str]:
    base = results[0]
    lines = [f"box boot to SSH (first boot of a new VM, QEMU software emulation, 1 CPU, median of {len(base.seconds)}):"]
    for r in results:
        versus = "" if r is base else f"   = {r.median / base.median:.0%} of {base.box.name}"
        lines.append(f"  {r.box.name:<56} {r.median:6.1f} s  (min {min(r.seconds):.1f}, max {max(r.seconds):.1f}){versus}")
    return lines


def vagrant_private_key() -> Path:
    """Vagrant's well-known private key (the boxes authorise its public half)."""
    from labkit.cluster.box import vagrant_insecure_key

    key = vagrant_insecure_key().with_suffix("")
    if not key.is_file():
        raise KitError(f"cannot find Vagrant's insecure private key beside {vagrant_insecure_key()}")
    # ssh refuses a private key others can read: use a private copy.
    private = Path(tempfile.gettempdir()) / "labkit-boxbench-vagrant.key"
    shutil.copyfile(key, private)
    private.chmod(0o600)
    return private
