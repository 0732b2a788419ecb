"""Fixtures of the end-to-end suite on real VMs (marker `vm`).

The suite boots the two-node cluster of ci-cluster.yml with the kit's own commands.
Where libvirtd is not run by systemd (CI machines, containers), the suite starts its
own libvirtd inside a network namespace it creates (scripts/libvirt-netns), runs every
kit command inside that namespace, and stops it at the end: the guests' networks then
exist only there.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e import connected
from tests.e2e.harness import ROOT, TIMINGS, Cluster

NETNS = "labkit-e2e"


def _libvirt_answers() -> bool:
    if shutil.which("virsh") is None:
        return False
    return subprocess.run(["virsh", "-c", "qemu:///system", "version"], capture_output=True, timeout=30, check=False).returncode == 0


@pytest.fixture(scope="session")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    for tool in ("vagrant", "virsh", "qemu-img", "debootstrap"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} is not installed: the VM suite needs vagrant, vagrant-libvirt, libvirt, qemu and debootstrap (see README)")
    if os.geteuid() != 0:
        pytest.skip("the VM suite needs root (it builds the box with debootstrap)")
    systemd = Path("/run/systemd/system").is_dir()
    netns = None
    if not systemd:
        if _libvirt_answers():
            pytest.fail("a libvirtd not started by this suite is already running; stop it (or run the suite on a systemd host)")
        subprocess.run([str(ROOT / "scripts/libvirt-netns"), "start", NETNS], check=True, timeout=300)
        netns = NETNS
    elif not _libvirt_answers():
        pytest.skip("libvirtd does not answer on qemu:///system: `sudo systemctl start libvirtd`")
    state = tmp_path_factory.mktemp("kitci-state")
    # The box's kernel and initrd are read by QEMU (user libvirt-qemu): keep Vagrant's
    # home in a folder every user can traverse.
    vagrant_home = Path("/var/tmp/labkit-e2e/vagrant.d")
    vagrant_home.mkdir(parents=True, exist_ok=True)
    for p in (vagrant_home, vagrant_home.parent):
        p.chmod(0o755)
    env = {
        **os.environ,
        "LABKIT_CONFIG": str(ROOT / "tests/e2e/ci-cluster.yml"),
        "LABKIT_STATE_DIR": str(state),
        "VAGRANT_HOME": str(vagrant_home),
        "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
    }
    c = Cluster(env=env, netns=netns, state_dir=state)
    try:
        yield c
    finally:
        if not os.environ.get("LABKIT_E2E_KEEP"):
            c.kit("destroy", "--yes", "--box-volume", check=False)
            if netns:
                subprocess.run([str(ROOT / "scripts/libvirt-netns"), "stop", netns], check=False, timeout=120)


@pytest.fixture(scope="session")
def double(cluster: Cluster) -> Iterator[None]:
    """CI's upstream test double (labkit.dev.double), served on loopback where the kit's
    fetches run: inside the cluster's network namespace when there is one."""
    from labkit.dev.double import PORT

    folder = ROOT / ".cache/upstream-double"
    if not (folder / "standins.yml").is_file():
        pytest.fail("the upstream double is not built: test_build_the_upstream_double_and_empty_the_cache runs first")
    argv = [*cluster.prefix(), sys.executable, "-m", "labkit.cache.serve", str(folder), "--host", "127.0.0.1", "--port", str(PORT)]
    server = subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        ready = server.stdout.readline() if server.stdout else ""  # "serving … at …" once it listens
        assert ready.startswith("serving"), f"the upstream double did not start: {ready!r}"
        yield
    finally:
        server.terminate()
        server.wait(timeout=30)


@pytest.fixture(scope="session")
def k8s(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """The connected-machine cluster with every layer (marker `k8s`; see connected.py)."""
    yield from connected.k8s_cluster(tmp_path_factory)


@pytest.fixture(scope="session")
def api(k8s: Cluster) -> object:
    """The Kubernetes client, configured for that cluster after its first `./kit up`."""
    return connected.api_client(k8s)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not TIMINGS:
        return
    terminalreporter.section("VM suite: time per phase")
    for name, secs in TIMINGS:
        terminalreporter.write_line(f"  {name:<44} {secs:8.1f} s" if secs is not None else f"  {name}")
