"""The foundation on real VMs, reached the way a connected laptop reaches it: from an
empty cache, `./kit up` pins and fetches everything from upstream (here CI's upstream
test double, through `cache.mirrors`), boots two nodes and provisions them; SSH and the
private network work; a re-run fetches and changes nothing; an upstream that serves
other bytes for the same version is refused; destroy leaves libvirt holding nothing.

The tests run in file order and share one cluster (they are the phases of one run).
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
import time

import pytest

from tests.e2e.harness import ROOT, Cluster, record, walk_lab

pytestmark = pytest.mark.vm

NODES = {"node1": "192.168.60.11", "node2": "192.168.60.12"}
CACHE = ROOT / ".cache/artifacts"  # ci-cluster.yml's cache.dir
DOUBLE = ROOT / ".cache/upstream-double"  # and its overlay's folder: the upstream double


def test_box_build(cluster: Cluster) -> None:
    start = time.monotonic()
    # On the host's network: debootstrap downloads from Debian's mirror.
    cluster.kit("box.build", timeout=1800, host_network=True)
    record("box.build (debootstrap + image, or cached)", time.monotonic() - start)


def test_build_the_upstream_double_and_empty_the_cache(cluster: Cluster) -> None:
    """CI's stand-in for the connected world (labkit.dev.double), and an empty artifact cache:
    from here on every byte reaches the cache the way it does on a student's laptop."""
    start = time.monotonic()
    cluster.kit("cache.standins", timeout=900, host_network=True)
    record("build the upstream double (stand-ins, registry, Debian mirror)", time.monotonic() - start)
    shutil.rmtree(CACHE, ignore_errors=True)
    assert not CACHE.exists()


def test_locked_up_refuses_what_the_repository_does_not_pin_before_any_vm_boots(cluster: Cluster, double: None) -> None:
    proc = cluster.kit("up", "--locked", timeout=600, check=False)
    assert proc.returncode == 1
    assert "--locked: the repository does not pin these artifacts, so nothing was fetched or booted" in proc.stderr
    for name in ("containerd 2.3.4 (amd64)", "runc 1.4.3 (amd64)", "standin_image"):
        assert name in proc.stderr
    assert cluster.virsh("list", "--all", "--name").split() == [], "a VM was created"
    assert not CACHE.exists() or not any(CACHE.rglob("*.deb")), "something was fetched"


def installing_packages(line: str) -> bool:
    """The task that installs the nodes' packages has started: where Ctrl-C hurts most."""
    return "Packages | Install the packages kubeadm's preflight expects" in line


def test_first_up_pins_fetches_and_is_interrupted_mid_provisioning(cluster: Cluster, double: None) -> None:
    """From an empty cache: pins on first fetch, fetches through the mirrors, boots, and
    is interrupted (Ctrl-C) in the middle of provisioning: a message, never a traceback."""
    start = time.monotonic()
    proc = cluster.kit("up", timeout=3600, check=False, interrupt_when=installing_packages, interrupt_delay=15)
    record("first `up`, Ctrl-C 15 s into the package install", time.monotonic() - start)
    assert proc.returncode != 0, "the interrupted `up` reported success"
    assert "interrupted" in proc.stderr and "run the command again" in proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr
    assert not (cluster.state_dir / "last-run.json").exists()
    out = proc.stdout
    # What came from where, and which pins are published and which first-fetch:
    assert "from mirror 127.0.0.1:8791" in out
    assert "pinned now from a published checksum: 4" in out  # containerd, runc, CNI plugins, the moved .deb
    assert "containerd 2.3.4 amd64: upstream's checksum file" in out
    assert "deb-ethtool 1:6.14.2-1 amd64: Debian's signed index (the pin moved)" in out
    assert "pinned now from the registry's digest of the tag: 1" in out
    assert "the pinned 1:6.14.2-1 is gone from Debian trixie; taking 1:6.14.2-1+labkitci1" in out
    for line in out.splitlines():
        if "━" not in line and line.strip().startswith(("pinned now", "from mirror", "containerd 2.3.4", "deb-ethtool", "standin_image")):
            record(f"  first up: {line.strip()}", None)
    lock = (CACHE / "labkit.lock.yml").read_text()
    assert "source: checksum-file" in lock and "source: registry" in lock and "source: debian-index" in lock


def test_up_again_after_the_interruption_converges(cluster: Cluster, double: None) -> None:
    start = time.monotonic()
    proc = cluster.kit("up", timeout=3600)
    record("`up` again after Ctrl-C (converges)", time.monotonic() - start)
    assert "already in the cache, verified: nothing to fetch" in proc.stdout
    summary = json.loads((cluster.state_dir / "last-run.json").read_text())
    for phase in summary["phases"]:
        record(f"  up again: {phase['name']}", phase["seconds"])
    assert set(summary["recap"]) == set(NODES)
    assert all(r["failed"] == 0 and r["unreachable"] == 0 for r in summary["recap"].values())
    assert "phase times:" in proc.stdout
    # The package whose pin moved on is installed on the nodes, at the version the signed index gave.
    version = cluster.kit("ssh", "node1", "--command", "dpkg-query -W -f '${Version}' ethtool", timeout=300).stdout.strip()
    assert version.endswith("+labkitci1"), version


def test_a_corrupt_artifact_is_reported_and_fetched_again_verified(cluster: Cluster, double: None) -> None:
    target = next(CACHE.glob("files/runc/*/amd64/runc.amd64"))
    good = target.read_bytes()
    target.write_bytes(good[:-16] + b"deliberately bad")
    status = cluster.kit("cache.status", timeout=300, check=False)
    assert status.returncode == 1
    assert "corrupt" in status.stdout and "runc" in status.stdout
    cluster.kit("cache.fetch", timeout=600)
    assert target.read_bytes() == good


@pytest.mark.parametrize("node", sorted(NODES))
def test_node_answers_over_ssh(cluster: Cluster, node: str) -> None:
    proc = cluster.kit("ssh", node, "--command", "hostname; ip -o -4 addr show", timeout=300)
    lines = proc.stdout.splitlines()
    assert node in lines
    assert f"inet {NODES[node]}/24" in proc.stdout


@pytest.mark.parametrize(("src", "dst"), [("node1", "node2"), ("node2", "node1")])
def test_nodes_reach_each_other_on_the_private_network(cluster: Cluster, src: str, dst: str) -> None:
    # As the vagrant user, as a student would: the box allows unprivileged ICMP.
    proc = cluster.kit("ssh", src, "--command", f"ping -c 3 -W 5 {NODES[dst]}", timeout=300)
    assert "3 received" in proc.stdout or " 0% packet loss" in proc.stdout


def test_node_layers_hold_after_a_reboot(cluster: Cluster) -> None:
    start = time.monotonic()
    for node in NODES:
        cluster.kit("ssh", node, "--command", "sudo systemctl reboot", timeout=120, check=False)
    for node in NODES:
        cluster.wait_for_ssh(node, timeout=900)
    record("reboot both nodes", time.monotonic() - start)
    inventory = cluster.state_dir / "inventory.yml"
    argv = [
        *cluster.prefix(),
        sys.executable,
        "-m",
        "pytest",
        "-v",
        "-p",
        "no:cacheprovider",
        "--hosts=ansible://cluster",
        f"--ansible-inventory={inventory}",
        "--sudo",
        str(ROOT / "tests/e2e/nodes/node_layers_spec.py"),
    ]
    # The kit serves the cache only while its playbooks run: serve it for `ctr pull` here.
    server = subprocess.Popen(
        [*cluster.prefix(), sys.executable, "-m", "labkit.cache.serve", str(ROOT / ".cache/artifacts"), "--host", "192.168.60.1", "--port", "8790"], cwd=ROOT, env=cluster.env
    )
    try:
        proc = subprocess.run(argv, cwd=ROOT, env={**cluster.env, "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg")}, capture_output=True, text=True, timeout=900, check=False)
    finally:
        server.terminate()
        server.wait(timeout=30)
    print(proc.stdout[-8000:], proc.stderr[-2000:])
    assert proc.returncode == 0, "testinfra checks of the node layers failed after the reboot"
    assert " passed" in proc.stdout and "skipped" not in proc.stdout


def test_status_shows_both_running(cluster: Cluster) -> None:
    proc = cluster.kit("status", timeout=300)
    assert proc.stdout.count("running") == 2


def test_a_third_up_fetches_nothing_and_changes_nothing(cluster: Cluster, double: None) -> None:
    first = json.loads((cluster.state_dir / "last-run.json").read_text())
    start = time.monotonic()
    proc = cluster.kit("up", timeout=3000)
    again = time.monotonic() - start
    record("third `up` (no change)", again)
    assert "already in the cache, verified: nothing to fetch" in proc.stdout
    summary = json.loads((cluster.state_dir / "last-run.json").read_text())
    assert summary["changed"] == 0, summary["recap"]
    first_total = sum(p["seconds"] for p in first["phases"])
    record(f"  no-change up / converging up = {again / first_total:.0%}", None)


def test_a_node_power_cut_mid_run_then_up_again_converges(cluster: Cluster) -> None:
    """Fault: node2 loses power (`virsh reset`) while `./kit provision` runs its base role.
    The run fails naming node2; once node2 is back, `./kit up` converges, no package is
    left half-configured on either node (`dpkg --audit`), and the next run changes nothing."""
    start = time.monotonic()
    cut: list[float] = []

    def power_cut() -> None:
        cut.append(time.monotonic() - start)
        print("\n[harness] power cut: virsh reset kitci-node2", flush=True)
        cluster.virsh("reset", "kitci-node2")

    failed = cluster.kit("provision", timeout=1800, check=False, interrupt_when=lambda line: line.startswith("TASK [node_base"), fault=power_cut)
    record(f"provision with node2's power cut {cut[0] if cut else -1:.0f} s in (fails)", time.monotonic() - start)
    assert cut, "the power cut never happened: the run had no node_base task"
    assert failed.returncode != 0 and "node2" in failed.stderr, failed.stderr[-2000:]
    cluster.wait_for_ssh("node2", timeout=900)
    t = time.monotonic()
    again = cluster.kit("up", timeout=1800)
    record("`up` after the power cut (converges)", time.monotonic() - t)
    assert "changed=" in again.stdout
    for node in NODES:
        audit = cluster.kit("ssh", node, "--command", "sudo dpkg --audit; echo audit-rc=$?", timeout=300).stdout
        assert "audit-rc=0" in audit and "not fully installed" not in audit and "half" not in audit, audit
    t = time.monotonic()
    cluster.kit("provision", timeout=1800)
    record("provision after the recovery (no change)", time.monotonic() - t)
    summary = json.loads((cluster.state_dir / "last-run.json").read_text())
    assert summary["changed"] == 0, summary["recap"]


def test_upstream_serving_other_bytes_for_the_same_version_is_refused(cluster: Cluster, double: None) -> None:
    """The double re-releases containerd 2.3.4 with other bytes (and a checksum file to
    match): the lock refuses them, naming both checksums, and nothing on the nodes changes."""
    served = next(DOUBLE.glob("github.com/containerd/containerd/releases/download/v2.3.4/containerd-2.3.4-linux-amd64.tar.gz"))
    sums = served.with_name(served.name + ".sha256sum")
    original, original_sums = served.read_bytes(), sums.read_text()
    cached = next(CACHE.glob("files/containerd/2.3.4/amd64/*.tar.gz"))
    pinned = hashlib.sha256(cached.read_bytes()).hexdigest()
    on_node = cluster.kit("ssh", "node1", "--command", "sha256sum /usr/local/bin/containerd", timeout=300).stdout.split()[0]
    other = original + b"\0" * 512  # same version, other bytes
    try:
        served.write_bytes(other)
        sums.write_text(f"{hashlib.sha256(other).hexdigest()}  {served.name}\n")
        cached.unlink()
        proc = cluster.kit("cache.fetch", timeout=600, check=False)
        assert proc.returncode == 1
        assert f"served bytes with sha256 {hashlib.sha256(other).hexdigest()}" in proc.stderr
        assert f"pinned to sha256 {pinned}" in proc.stderr
        assert not cached.exists(), "the other bytes reached the cache"
        up = cluster.kit("up", timeout=1200, check=False)
        assert up.returncode == 1 and "served bytes with sha256" in up.stderr
        assert "provision (playbooks/site.yml)" not in up.stdout
        again = cluster.kit("ssh", "node1", "--command", "sha256sum /usr/local/bin/containerd", timeout=300).stdout.split()[0]
        assert again == on_node, "containerd on the node changed"
    finally:
        served.write_bytes(original)
        sums.write_text(original_sums)
    cluster.kit("cache.fetch", timeout=600)
    assert hashlib.sha256(cached.read_bytes()).hexdigest() == pinned


@pytest.mark.parametrize("lab", ["01", "02"])
def test_lab_guide_runs_as_written_each_check_failing_before_its_step(cluster: Cluster, lab: str) -> None:
    """Labs 01-02 on the real VMs, as a student walks them: after lab.start every check
    fails; `lab.walk` runs the guide's own sh blocks step by step (on the node as user
    vagrant, on the host only for `# on the host` blocks, no cache served) and holds each
    step to its checks: failing before it, passing after it. Then lab.check passes,
    lab.solve finds every step done, and after lab.reset every check fails again."""

    def check(expect_ok: bool) -> tuple[int, float]:
        start = time.monotonic()
        proc = cluster.kit("lab.check", lab, "--timing", timeout=300, check=False)
        elapsed = time.monotonic() - start
        passing = proc.stdout.count("  ✓ ")
        failing = proc.stdout.count("  ✗ ")
        if expect_ok:
            assert proc.returncode == 0 and failing == 0, proc.stdout
        else:
            assert proc.returncode == 1 and passing == 0, f"a check passes before its step:\n{proc.stdout}"
        return passing + failing, elapsed

    t = time.monotonic()
    cluster.kit("lab.start", lab, timeout=1200)
    record(f"lab {lab}: start (files, images, the snapshot)", time.monotonic() - t)
    total, _ = check(expect_ok=False)
    steps = walk_lab(cluster, lab, timeout=2400)
    _, check_secs = check(expect_ok=True)
    record(f"lab {lab}: check ({total} checks, all pass)", check_secs)
    _, again_secs = check(expect_ok=True)  # the same a moment later (the nodes settled, the SSH master open)
    record(f"lab {lab}: check again, all pass", again_secs)
    solved = cluster.kit("lab.solve", lab, timeout=600)
    assert f"0 step(s) done by the guide's commands, {len(steps)} done already" in solved.stdout, solved.stdout
    t = time.monotonic()
    cluster.kit("lab.reset", lab, timeout=1200)
    record(f"lab {lab}: reset (snapshot restore)", time.monotonic() - t)
    check(expect_ok=False)
    status = json.loads(cluster.kit("lab.status", "--json", timeout=120).stdout)
    assert lab in status["labs"] and "reset" in status["labs"][lab]


def test_lab_list_shows_every_lab(cluster: Cluster) -> None:
    proc = cluster.kit("lab.list", timeout=120)
    for lab in ("01", "02", "03", "04", "05", "06"):
        assert f" {lab} " in proc.stdout


def test_benchmark_prints_its_figures(cluster: Cluster) -> None:
    """Two new clusters from the warm cache, Mitogen off then tuned (the first provisioning
    side by side), then no-change re-runs of the tuned one. The all-off re-run opens one
    SSH connection per task: under QEMU emulation a full one takes over ten minutes, so CI
    re-runs one role with all tuning off (`./kit bench` does all)."""
    start = time.monotonic()
    proc = cluster.kit("bench", "--new-clusters", "--tags", "node_network", timeout=4800)
    record("benchmark (two new clusters, then re-runs)", time.monotonic() - start)
    assert "first provisioning of a new cluster" in proc.stdout and "of the baseline" in proc.stdout
    assert "provisioning benchmark" in proc.stdout and "re-run, tuned " in proc.stdout
    for line in proc.stdout.splitlines():
        if any(w in line for w in ("of the first", "first provisioning", "tuning off", "the baseline")) or line.startswith("    "):
            record(f"  bench: {line.strip()}", None)
    first = json.loads((cluster.state_dir / "first-run.json").read_text())
    assert first["changed"] > 0 and all(r["failed"] == 0 and r["unreachable"] == 0 for r in first["recap"].values())


def test_destroy_leaves_no_domain_volume_or_network(cluster: Cluster) -> None:
    start = time.monotonic()
    proc = cluster.kit("destroy", "--yes", "--box-volume", timeout=900)
    record("destroy", time.monotonic() - start)
    assert "libvirt holds no domain, network or volume of kitci" in proc.stdout
    domains = [d for d in cluster.virsh("list", "--all", "--name").split() if d]
    networks = [n for n in cluster.virsh("net-list", "--all", "--name").split() if n and n != "default"]
    volumes = cluster.virsh("vol-list", "default").splitlines()[2:]
    assert domains == []
    assert networks == []
    assert [v for v in volumes if v.strip()] == []


def test_the_small_profile_boots_as_far_as_this_machine_allows(cluster: Cluster, tmp_path_factory: pytest.TempPathFactory) -> None:
    """`profile: small` on real VMs: the CI cluster's config (layers off: this machine
    cannot run Kubernetes) with the profile's two nodes, their memory and CPUs; booted,
    the node layers provisioned from the same cache, each guest holding the RAM the
    profile gives it; then destroyed, leaving libvirt empty."""
    import yaml

    config = yaml.safe_load((ROOT / "tests/e2e/ci-cluster.yml").read_text())
    config.update(name="kitsmall", profile="small")
    config.pop("nodes")  # the profile's
    config["network"] = {"cidr": "192.168.61.0/24"}
    config["libvirt"] = {**config["libvirt"], "management_cidr": "192.168.126.0/24"}
    path = ROOT / "tests/e2e/.ci-small.yml"  # beside ci-cluster.yml: its relative cache paths hold
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    state = tmp_path_factory.mktemp("kitsmall-state")
    small = Cluster(env={**cluster.env, "LABKIT_CONFIG": str(path), "LABKIT_STATE_DIR": str(state)}, netns=cluster.netns, state_dir=state)
    try:
        start = time.monotonic()
        small.kit("up", timeout=3600)
        record("up, the small profile (2 nodes, 4608 MiB, node layers)", time.monotonic() - start)
        status = small.kit("status").stdout
        assert "cp1" in status and "worker1" in status and "2048" in status and "2560" in status
        for node, memory in (("cp1", 2048), ("worker1", 2560)):
            total = int(small.kit("ssh", node, "--command", "awk '/MemTotal/ {print $2}' /proc/meminfo").stdout.split()[-1]) // 1024
            assert memory - 320 <= total <= memory, f"{node} has {total} MiB of the {memory} the profile gives it"
            record(f"  small profile: {node} sees {total} MiB of its {memory} MiB", None)
        assert "guest RAM of this config: 4608 MiB over 2 node(s)" in small.kit("budget").stdout
        assert "profile small: 2 node(s), 4608 MiB" in small.kit("lab.list").stdout
    finally:
        proc = small.kit("destroy", "--yes", "--box-volume", timeout=900, check=False)
        path.unlink(missing_ok=True)
    assert "libvirt holds no domain, network or volume of kitsmall" in proc.stdout
