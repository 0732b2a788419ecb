"""`./kit box.bench`: what it boots and how it reports (the boots themselves run on a host with QEMU)."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import pytest

from labkit.cluster import box
from labkit.dev import boxbench
from labkit.errors import KitError


def _box(path: Path, members: dict[str, bytes]) -> Path:
    with tarfile.open(path, "w") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def test_the_command_line_comes_from_the_box_itself(tmp_path: Path) -> None:
    members = {n: b"x" for n in ("box.img", "vmlinuz", "initrd.img")} | {"Vagrantfile": box.BOX_VAGRANTFILE.encode()}
    assert boxbench.unpack(_box(tmp_path / "a.box", members), tmp_path) == box.KERNEL_CMDLINE


@pytest.mark.parametrize(
    ("members", "message"),
    [
        ({"box.img": b"x", "Vagrantfile": b""}, "it lacks initrd.img, vmlinuz"),
        ({n: b"x" for n in ("box.img", "vmlinuz", "initrd.img", "Vagrantfile")}, "sets no kernel command line"),
    ],
)
def test_a_box_that_is_not_a_labkit_box_is_named(tmp_path: Path, members: dict[str, bytes], message: str) -> None:
    with pytest.raises(KitError, match=message):
        boxbench.unpack(_box(tmp_path / "b.box", members), tmp_path)


def test_a_file_that_is_not_a_box_is_named(tmp_path: Path) -> None:
    junk = tmp_path / "junk.box"
    junk.write_bytes(b"\x00not a tar")
    with pytest.raises(KitError, match="not a readable box file"):
        boxbench.unpack(junk, tmp_path)
    with pytest.raises(KitError, match="does not exist"):
        boxbench.unpack(tmp_path / "none.box", tmp_path)


def test_the_guest_reaches_nothing_but_its_ssh_port_on_loopback(tmp_path: Path) -> None:
    argv = boxbench.qemu_argv(tmp_path, tmp_path / "d.qcow2", "quiet", 2222)
    netdev = argv[argv.index("-netdev") + 1]
    assert "restrict=on" in netdev.split(",")
    assert "hostfwd=tcp:127.0.0.1:2222-:22" in netdev.split(",")
    assert argv[argv.index("-accel") + 1] == "tcg"


def test_the_report_compares_medians_with_the_first_box() -> None:
    before = boxbench.Booted(Path("before.box"), [50.0, 40.0, 45.0])
    after = boxbench.Booted(Path("after.box"), [20.0, 30.0, 27.0])
    lines = boxbench.report([before, after])
    assert "median of 3" in lines[0]
    assert "45.0 s" in lines[1] and "of before.box" not in lines[1]
    assert "27.0 s" in lines[2] and "= 60% of before.box" in lines[2]


def test_no_boot_at_all_is_refused_with_a_message(tmp_path: Path) -> None:
    with pytest.raises(KitError, match="at least once"):
        boxbench.run([tmp_path / "a.box"], tmp_path / "key", runs=0)
