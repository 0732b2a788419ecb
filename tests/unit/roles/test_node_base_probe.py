"""node_base's probe module (roles/node_base/library): one call reads what the role's
tasks decide on. Tested on a made-up root folder and recorded dpkg-query output."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[3]


def _module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("node_base_probe", ROOT / "roles/node_base/library/node_base_probe.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


probe_mod = _module()
MARKER = "/var/lib/labkit/apt-index.sha256"
# Recorded from `dpkg-query -W -f '${Package} ${db:Status-Abbrev}\n' socat ethtool conntrack`
# on a node where conntrack had been removed (config files left) and socat never installed.
DPKG_QUERY = "ethtool ii \nconntrack rc \n"


def _node(tmp_path: Path) -> Path:
    root = tmp_path / "node"
    for d in ("etc/systemd/system", "proc/sys/kernel", "proc/sys/net/bridge", "sys/module/overlay", "var/lib/dpkg/updates", "var/lib/labkit"):
        (root / d).mkdir(parents=True)
    (root / "etc/hostname").write_text("node1\n")
    (root / "proc/sys/kernel/hostname").write_text("labkit\n")
    (root / "etc/fstab").write_text("LABEL=root / ext4 defaults 0 1\n")
    (root / "var/lib/labkit/apt-index.sha256").write_text("abc123\n")
    return root


def test_a_fresh_node_reads_as_work_to_do(tmp_path: Path) -> None:
    root = _node(tmp_path)
    state = probe_mod.probe(str(root), ["overlay", "br_netfilter", "nf_conntrack"], ["socat", "ethtool", "conntrack"], MARKER, lambda argv: (1, DPKG_QUERY))
    assert state == {
        "hostname_static": "node1",
        "hostname_running": "labkit",
        "fstab_exists": True,
        "swap_target_masked": False,
        "modules_missing": ["nf_conntrack"],
        "dpkg_pending": 0,
        "apt_marker": "abc123",
        "packages_missing": ["socat", "conntrack"],
        "sysctls_set": True,  # none asked
        "units": {},  # none asked
    }


def test_a_provisioned_node_reads_as_nothing_to_do(tmp_path: Path) -> None:
    root = _node(tmp_path)
    (root / "proc/sys/kernel/hostname").write_text("node1\n")
    os.symlink("/dev/null", root / "etc/systemd/system/swap.target")
    state = probe_mod.probe(str(root), ["overlay", "br_netfilter"], ["ethtool"], MARKER, lambda argv: (0, "ethtool ii \n"))
    assert state["swap_target_masked"] and state["modules_missing"] == [] and state["packages_missing"] == []


def test_what_an_interruption_leaves_is_seen(tmp_path: Path) -> None:
    root = _node(tmp_path)
    (root / "var/lib/dpkg/updates/0003").write_text("half-done")
    (root / "etc/hostname").unlink()
    (root / "var/lib/labkit/apt-index.sha256").unlink()
    os.symlink("/lib/systemd/system/swap.target", root / "etc/systemd/system/swap.target")
    state = probe_mod.probe(str(root), [], ["ethtool"], MARKER, lambda argv: (0, "ethtool iU \n"))  # unpacked, not configured
    assert state["dpkg_pending"] == 1
    assert state["hostname_static"] == "" and state["apt_marker"] == ""
    assert not state["swap_target_masked"]
    assert state["packages_missing"] == ["ethtool"]


@pytest.mark.parametrize("rc", [2, 127])
def test_a_failing_dpkg_query_counts_every_package_as_missing(tmp_path: Path, rc: int) -> None:
    state = probe_mod.probe(str(_node(tmp_path)), [], ["ethtool", "socat"], MARKER, lambda argv: (rc, ""))
    assert state["packages_missing"] == ["ethtool", "socat"]


def test_dpkg_query_is_asked_about_exactly_the_role_packages(tmp_path: Path) -> None:
    asked: list[list[str]] = []
    probe_mod.probe(str(_node(tmp_path)), [], ["socat", "ethtool"], MARKER, lambda argv: (asked.append(argv), (0, ""))[1])
    assert asked == [["dpkg-query", "-W", "-f", "${Package} ${db:Status-Abbrev}\n", "socat", "ethtool"]]
    assert probe_mod.not_installed("ethtool:amd64 ii \n", ["ethtool"]) == []


def test_sysctls_count_as_set_only_live_and_persisted(tmp_path: Path) -> None:
    root = _node(tmp_path)
    (root / "proc/sys/net/ipv4").mkdir(parents=True)
    (root / "proc/sys/net/ipv4/ip_forward").write_text("1\n")
    (root / "etc/sysctl.d").mkdir()
    conf = root / "etc/sysctl.d/90-labkit.conf"
    want = {"net.ipv4.ip_forward": 1}

    def state() -> bool:
        return probe_mod.probe(str(root), [], [], MARKER, None, want, "/etc/sysctl.d/90-labkit.conf")["sysctls_set"]

    assert not state()  # live, not persisted
    conf.write_text("net.ipv4.ip_forward=1\n")
    assert state()
    (root / "proc/sys/net/ipv4/ip_forward").write_text("0\n")
    assert not state()  # persisted, not live (e.g. reset by a reboot before the file existed)
    (root / "proc/sys/net/ipv4/ip_forward").unlink()
    assert not state()  # unknown to this kernel: let the module say so
    assert probe_mod.probe(str(root), [], [], MARKER)["sysctls_set"]  # nothing asked


def test_dpkg_state_is_read_only_once_no_apt_or_dpkg_holds_its_lock(tmp_path: Path) -> None:
    """Ctrl-C stops the kit, not the apt-get it started on the node: that one goes on
    holding dpkg's lock, and `dpkg --configure -a` beside it fails. The probe waits."""
    import subprocess
    import sys

    root = _node(tmp_path)
    lock = root / "var/lib/dpkg/lock-frontend"
    lock.touch()
    holder = "import fcntl, os, sys; fd = os.open(sys.argv[1], os.O_RDWR); fcntl.lockf(fd, fcntl.LOCK_EX); print('locked', flush=True); sys.stdin.read()"
    # A stand-in for the orphaned apt-get: another process holding the same POSIX lock.
    apt = subprocess.Popen([sys.executable, "-c", holder, str(lock)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert apt.stdout is not None and apt.stdout.readline().strip() == "locked"
        assert probe_mod.wait_for_dpkg(str(root), timeout=0.3, poll=0.05) is None
    finally:
        assert apt.stdin is not None
        apt.stdin.close()  # the stand-in ends, and with it its lock
        apt.wait(timeout=30)
    assert probe_mod.wait_for_dpkg(str(root), timeout=30, poll=0.05) is not None
    assert probe_mod.wait_for_dpkg(str(tmp_path / "no-dpkg-here"), timeout=0) is not None  # no lock files: nothing to wait for


# Recorded from `systemctl show --property=UnitFileState,ActiveState -- systemd-timesyncd.service ssh.service`
# on a node whose timesyncd was enabled and running and whose sshd had been stopped.
SYSTEMCTL_SHOW = "ActiveState=active\nUnitFileState=enabled\n\nActiveState=inactive\nUnitFileState=disabled\n"


def test_units_are_read_in_one_systemctl_call_in_the_order_asked(tmp_path: Path) -> None:
    calls: list[list[str]] = []

    def run(argv: list[str]) -> tuple[int, str]:
        calls.append(argv)
        return (0, SYSTEMCTL_SHOW) if argv[0] == "systemctl" else (0, "")

    state = probe_mod.probe(str(_node(tmp_path)), [], [], MARKER, run, units=["systemd-timesyncd.service", "ssh.service"])
    assert state["units"] == {"systemd-timesyncd.service": {"enabled": True, "active": True}, "ssh.service": {"enabled": False, "active": False}}
    assert [c for c in calls if c[0] == "systemctl"] == [["systemctl", "show", "--property=UnitFileState,ActiveState", "--", "systemd-timesyncd.service", "ssh.service"]]


def test_a_unit_systemd_cannot_answer_for_reads_as_to_do(tmp_path: Path) -> None:
    state = probe_mod.probe(str(_node(tmp_path)), [], [], MARKER, lambda argv: (1, ""), units=["systemd-timesyncd.service"])
    assert state["units"] == {"systemd-timesyncd.service": {"enabled": False, "active": False}}
    assert probe_mod.probe(str(tmp_path / "node"), [], [], MARKER, None, units=[])["units"] == {}
