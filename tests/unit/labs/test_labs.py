"""The lab runner and the logic of labs 01-02's checks, against a recording test double of
a node (FakeHost): the real VMs prove the checks end to end (tests/e2e)."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from labkit.cluster import lifecycle
from labkit.errors import KitError
from labkit.labs import actions, context, discovery
from labkit.labs import checks as labs_checks
from labkit.labs import progress as labs_progress
from tests.unit.doubles import FakeFile, FakeHost, FakeNodes


def lab(lab_id: str) -> discovery.Lab:
    return discovery.find(discovery.discover(), lab_id)


def test_every_lab_is_discovered_with_its_checks() -> None:
    found = discovery.discover()
    assert [lab.id for lab in found] == ["01", "02", "03", "04", "05", "06"]
    for one in found:
        assert (one.path / "README.md").exists()
        assert (one.path / "lab.yml").exists()


def test_unknown_lab_lists_the_labs() -> None:
    with pytest.raises(KitError, match="no lab '9'; the labs are: 01"):
        discovery.find(discovery.discover(), "9")


def test_lab01_fails_on_a_fresh_node_and_passes_when_done() -> None:
    node = FakeHost(
        outputs={
            "systemd-detect-virt || true": "qemu",
            "ls /sys/bus/virtio/drivers 2>/dev/null || true": "virtio_blk\nvirtio_net",
            "grep -q -w hypervisor /proc/cpuinfo": "",
            BOOT_CMD: BOOT_LINE,
        }
    )
    results = labs_checks.run_checks(lab("01"), FakeNodes(node))
    assert [r.ok for r in results] == [False] * 5
    assert all(r.hint for r in results)
    d = "/home/vagrant/lab01"
    node.files.update(
        {
            f"{d}/virt.txt": FakeFile(True, "qemu\n"),
            f"{d}/virtio.txt": FakeFile(True, "virtio_blk\nvirtio_net\n"),
            f"{d}/cpuflag.txt": FakeFile(True, "hypervisor\n"),
            f"{d}/boot.txt": FakeFile(True, BOOT_LINE + "\ngraphical.target reached after 19.8s in userspace.\n"),
        }
    )
    results = labs_checks.run_checks(lab("01"), FakeNodes(node, ["lab01-mine"]))
    assert [(r.id, r.ok) for r in results] == [(r.id, True) for r in results], results


BOOT_CMD = "systemd-analyze 2>/dev/null | head -n 1 || true"
BOOT_LINE = "Startup finished in 2.104s (kernel) + 20.311s (userspace) = 22.415s"


def check_result(lab_id: str, check_id: str, node: FakeHost) -> labs_checks.Result:
    return next(r for r in labs_checks.run_checks(lab(lab_id), FakeNodes(node)) if r.id == check_id)


def test_lab01_on_virtualbox_and_arm64_records_what_that_node_has() -> None:
    d = "/home/vagrant/lab01"
    virtualbox = FakeHost(outputs={"ls /sys/bus/virtio/drivers 2>/dev/null || true": "virtio_net"}, files={f"{d}/virtio.txt": FakeFile(True, "virtio_net\n")})
    assert check_result("01", "virtio_recorded", virtualbox).ok
    copied = FakeHost(outputs={"ls /sys/bus/virtio/drivers 2>/dev/null || true": "virtio_net"}, files={f"{d}/virtio.txt": FakeFile(True, "virtio_blk\nvirtio_net\n")})
    assert not check_result("01", "virtio_recorded", copied).ok  # a listing from another machine
    arm64 = FakeHost(files={f"{d}/cpuflag.txt": FakeFile(True, "no hypervisor flag: an aarch64 CPU shows none\n")})
    assert check_result("01", "cpu_flag_recorded", arm64).ok
    typed = FakeHost(files={f"{d}/cpuflag.txt": FakeFile(True, "hypervisor\n")})
    assert not check_result("01", "cpu_flag_recorded", typed).ok  # the flag this CPU does not have
    x86_without = FakeHost(outputs={"grep -q -w hypervisor /proc/cpuinfo": ""}, files={f"{d}/cpuflag.txt": FakeFile(True, "no hypervisor flag: an x86_64 CPU shows none\n")})
    assert not check_result("01", "cpu_flag_recorded", x86_without).ok


def test_lab01_boot_time_is_the_nodes_own_not_a_line_typed_by_hand() -> None:
    typed = FakeHost(outputs={BOOT_CMD: BOOT_LINE}, files={"/home/vagrant/lab01/boot.txt": FakeFile(True, "Startup finished in 1s (kernel) + 2s (userspace)\n")})
    result = check_result("01", "boot_time_recorded", typed)
    assert not result.ok and "save its output, do not type it" in result.detail
    saved = FakeHost(outputs={BOOT_CMD: BOOT_LINE}, files={"/home/vagrant/lab01/boot.txt": FakeFile(True, BOOT_LINE + "\n")})
    assert check_result("01", "boot_time_recorded", saved).ok


def test_lab02_chroot_listing_must_be_rootfs_not_the_real_root() -> None:
    rootfs = "/home/vagrant/lab02/rootfs"
    outputs = {f"ls {rootfs}": "bin\nchroot-was-here\nlib\nlib64\nusr"}
    real_root = FakeHost(outputs=outputs, files={f"{rootfs}/chroot-was-here": FakeFile(True, "bin boot dev etc home lib lib64 proc root run sys tmp usr var\n")})
    result = check_result("02", "chroot_ran", real_root)
    assert not result.ok and "list / from inside the chroot" in result.detail
    inside = FakeHost(outputs=outputs, files={f"{rootfs}/chroot-was-here": FakeFile(True, "bin lib lib64 usr\n")})
    assert check_result("02", "chroot_ran", inside).ok


def test_lab01_rejects_a_wrong_answer() -> None:
    node = FakeHost(outputs={"systemd-detect-virt || true": "kvm"}, files={"/home/vagrant/lab01/virt.txt": FakeFile(True, "qemu\n")})
    result = labs_checks.run_checks(lab("01"), FakeNodes(node))[0]
    assert not result.ok and "does not say 'kvm'" in result.detail
    chinese = lab("01").detail(result.detail, "zh")  # the same failure, said in Chinese, its value kept
    assert "'kvm'" in chinese and "does not say" not in chinese


def test_lab02_cgroup_check_needs_a_kill() -> None:
    cg = "/sys/fs/cgroup/lab02"
    node = FakeHost(
        files={
            cg: FakeFile(True, is_directory=True),
            f"{cg}/memory.max": FakeFile(True, "33554432\n"),
            f"{cg}/memory.events": FakeFile(True, "low 0\nhigh 0\nmax 12\noom 1\noom_kill 0\n"),
        }
    )
    result = next(r for r in labs_checks.run_checks(lab("02"), FakeNodes(node)) if r.id == "cgroup_oom_kill")
    assert not result.ok and "oom_kill is 0" in result.detail
    node.files[f"{cg}/memory.events"] = FakeFile(True, "low 0\nhigh 0\nmax 12\noom 1\noom_kill 1\n")
    assert next(r for r in labs_checks.run_checks(lab("02"), FakeNodes(node)) if r.id == "cgroup_oom_kill").ok


def test_progress_is_kept_and_exported(tmp_path: Path) -> None:
    one = lab("01")
    progress = labs_progress.Progress(tmp_path / "p.json")
    assert progress.status(one) == "not started"
    progress.started(one)
    progress.checked(one, [labs_checks.Result("a", "s", True, "", "", 0.1), labs_checks.Result("b", "s", False, "h", "d", 0.1)])
    assert labs_progress.Progress(tmp_path / "p.json").status(one) == "in progress (1/2 checks)"
    progress.checked(one, [labs_checks.Result("a", "s", True, "", "", 0.1)])
    assert labs_progress.Progress(tmp_path / "p.json").status(one) == "passed"
    progress.reset(one)
    assert "reset" in labs_progress.Progress(tmp_path / "p.json").data["01"]


def test_a_lab_names_the_layers_it_lacks() -> None:
    two = lab("02")
    assert two.missing_layers([]) == []  # containers need only the node layers
    assert lab("03").missing_layers([]) == ["kubernetes"]
    assert lab("03").missing_layers(["kubernetes"]) == []
    # Lab 05 is the serverless rung: its own layer first, then what it stands on.
    assert lab("05").missing_layers(["kubernetes"]) == ["knative", "istio"]
    assert lab("05").missing_layers(["kubernetes", "istio", "knative"]) == []


def test_nodes_connect_over_ssh_with_the_inventorys_settings(tmp_path: Path) -> None:
    inventory = tmp_path / "inventory.yml"
    inventory.write_text(
        "all:\n  vars: {kit: {artifacts: {img: {ref: labkit.local/x:1, path: p, sha256: s}}}}\n"
        "  children:\n    cluster:\n      children:\n        control_plane:\n          hosts:\n"
        "            node1: {ansible_host: 192.0.2.10, ansible_port: 2222, ansible_user: vagrant, ansible_ssh_private_key_file: /k, ansible_ssh_common_args: -o X=1}\n"
    )
    nodes = context.CheckContext(inventory, ["node1"], lambda n: [], control_dir=tmp_path / "cp")
    host = nodes.first  # built lazily; no connection is made until a command runs
    backend = host.backend
    assert (backend.host.name, backend.host.port, backend.host.user) == ("192.0.2.10", "2222", "vagrant")
    assert backend.ssh_identity_file == "/k"
    assert backend.controlpath == str(tmp_path / "cp" / "ti-%%C")
    assert nodes.image_ref == "labkit.local/samples/web:v1"  # the kit's own sample image, on every cluster
    with pytest.raises(KitError, match="node9 is not in the inventory"):
        nodes["node9"]


def test_a_files_text_is_read_in_one_command_and_a_missing_file_is_none(tmp_path: Path) -> None:
    import testinfra

    nodes = context.CheckContext(tmp_path / "no-inventory.yml", ["node1"], lambda n: [])
    local = testinfra.get_host("local://")  # testinfra's own local backend stands for the node's SSH one
    commands: list[str] = []
    nodes._hosts["node1"] = type("Recording", (), {"run": lambda _self, cmd, *args: commands.append(cmd % args) or local.run(cmd, *args)})()
    odd = tmp_path / "it's a file with spaces.txt"
    odd.write_text("inside\n")
    assert nodes.text(str(odd)) == "inside\n"
    assert nodes.text(str(tmp_path / "missing.txt")) is None
    assert len(commands) == 2 and all(c.startswith("cat -- ") for c in commands)


def test_the_checks_reach_nodes_from_a_checkout_path_with_a_space(tmp_path: Path) -> None:
    """The ssh command testinfra builds keeps the control socket's path one argument."""
    import shlex as _shlex

    folder = tmp_path / "my labs" / "state"
    inventory = folder / "inventory.yml"
    folder.mkdir(parents=True)
    key = folder / "private key"
    inventory.write_text(yaml.safe_dump({"all": {"hosts": {"node1": {"ansible_host": "192.168.60.11", "ansible_user": "vagrant", "ansible_ssh_private_key_file": str(key)}}}}))
    nodes = context.CheckContext(inventory, ["node1"], lambda _: [], control_dir=folder / "cp")
    backend = nodes["node1"].backend
    cmd, args = backend._build_ssh_command("true")
    argv = _shlex.split(backend.quote(" ".join(cmd), *args))
    assert f"ControlPath={folder / 'cp'}/ti-%C" in argv
    assert str(key) in argv


class RecordingVagrant:
    """A test double of labkit.cluster.vagrant.Vagrant: records snapshot calls."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, list[str]]] = []

    def snapshot(self, action: str, name: str, nodes: list[str]) -> None:
        self.calls.append((action, name, list(nodes)))


def test_lab_start_after_an_interrupted_start_takes_only_the_missing_snapshots(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from labkit.cluster.kit import Kit
    from labkit.cluster.resolved import HostContext
    from tests.unit.configs import VALID, write

    k = Kit(config_path=write(tmp_path, VALID), state_dir=tmp_path / "state", say=lambda _: None)
    resolved = k.resolve(HostContext())
    names = [n.name for n in resolved.nodes]
    lab = discovery.find(discovery.discover(), "01")
    taken = {names[0]: [lab.snapshot]}  # the interrupted run got as far as the first node
    double = RecordingVagrant()
    monkeypatch.setattr(k, "vagrant", lambda: double)
    monkeypatch.setattr(actions, "snapshot_lister", lambda k: lambda node: taken.get(node, []))
    monkeypatch.setattr(actions, "put_files", lambda k, lab: double.calls.append(("files", lab.id, [])))
    assert actions.start(k, lab) == "taken"
    assert double.calls == [("files", "01", []), ("save", lab.snapshot, names[1:])]  # the files first: the snapshot keeps them
    taken.update({n: [lab.snapshot] for n in names})
    assert actions.start(k, lab) == "restored"
    assert double.calls[-1] == ("restore", lab.snapshot, names)


def test_lab_files_copies_the_labs_manifests_and_scripts_to_its_nodes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import json as _json

    from labkit.cache import serve
    from labkit.cluster import runner
    from labkit.cluster.kit import Kit
    from labkit.cluster.resolved import HostContext
    from tests.unit.configs import VALID, write

    k = Kit(config_path=write(tmp_path, VALID), state_dir=tmp_path / "state", say=lambda _: None)
    k.resolve(HostContext())
    calls: list[tuple[str, list[str], bool]] = []
    served: list[bool] = []

    @contextlib.contextmanager
    def serving(*args: Any, **kw: Any) -> Iterator[str]:  # a test double of serve.serving
        served.append(True)
        yield "http://test"
        served.append(False)

    monkeypatch.setattr(serve, "serving", serving)
    monkeypatch.setattr(lifecycle, "running_inventory", lambda k, resolved: tmp_path / "inventory.yml")
    monkeypatch.setattr(runner, "playbook", lambda root, name, inv, **kw: calls.append((name, kw["extra"], served[-1])))  # a recording test double
    files = actions.put_files(k, discovery.find(discovery.discover(), "02"))
    assert files == []
    name, extra, cache_served = calls[0]
    sent = _json.loads(extra[1])
    assert (name, sent["lab_id"], sent["lab_nodes"], cache_served) == ("lab-files.yml", "02", ["cp1"], True)
    assert sent["lab_images"] == ["labkit.local/samples/web:v1"]  # pulled into containerd on every node while the cache is served
    assert [f.name for f in actions.put_files(k, discovery.find(discovery.discover(), "03"))] == ["client.yaml", "service.yaml", "web.yaml"]
    assert [Path(f).name for f in _json.loads(calls[1][1][1])["lab_files"]] == ["client.yaml", "service.yaml", "web.yaml"]
    assert [f.name for f in actions.put_files(k, discovery.find(discovery.discover(), "06"))] == ["measure.sh"]


def test_progress_says_when_a_lab_was_passed_after_lab_solve(tmp_path: Path) -> None:
    one = lab("01")
    progress = labs_progress.Progress(tmp_path / "p.json")
    progress.started(one)
    progress.solved(one)
    progress.checked(one, [labs_checks.Result("a", "s", True, "", "", 0.1)])
    assert labs_progress.Progress(tmp_path / "p.json").status(one) == "passed, after lab.solve"
    own = labs_progress.Progress(tmp_path / "q.json")
    own.checked(one, [labs_checks.Result("a", "s", True, "", "", 0.1)])
    assert own.status(one) == "passed"


def test_a_damaged_progress_file_is_a_message(tmp_path: Path) -> None:
    (tmp_path / "p.json").write_text("{not json")
    with pytest.raises(KitError, match=r"cannot be read .* remove it to start the record afresh"):
        labs_progress.Progress(tmp_path / "p.json")


def test_a_pod_that_cannot_pull_its_image_is_named_with_what_to_do() -> None:
    class Api:  # test double of CheckContext.api over a recorded pod list
        def __init__(self, pods: list[dict[str, object]]) -> None:
            self.pods = pods

        def api(self, path: str) -> dict[str, object]:
            assert path == "/api/v1/namespaces/lab03/pods"
            return {"items": self.pods}

    stuck = {
        "metadata": {"name": "web-7d4b9c-abcde"},
        "status": {"containerStatuses": [{"image": "docker.io/library/busybox:1.37.0", "state": {"waiting": {"reason": "ImagePullBackOff"}}}]},
    }
    running = {"metadata": {"name": "web-7d4b9c-fghij"}, "status": {"containerStatuses": [{"image": "x", "state": {"running": {}}}]}}
    problems = labs_checks.pull_problems(lab("03"), Api([stuck, running]))
    assert len(problems) == 1 and problems[0].startswith("pod web-7d4b9c-abcde cannot pull docker.io/library/busybox:1.37.0 (ImagePullBackOff)")
    assert "./kit lab.start 03" in problems[0]
    assert labs_checks.pull_problems(lab("02"), Api([stuck])) == []  # below Kubernetes: no API to ask


def _synthetic_lab(checks: dict[str, Callable[[object], None]]) -> discovery.Lab:
    ids = list(checks)
    spec = discovery.LabSpec(id="99", title="t", layer="vm", minutes=1, steps=[discovery.Step(title=f"step {i}", checks=[i]) for i in ids])
    return discovery.Lab(spec, Path("."), {i: discovery.Check(i, f"hint {i}", fn) for i, fn in checks.items()})


def test_checks_run_side_by_side_and_report_in_step_order() -> None:
    # Three checks that can only all finish when they run at the same time: each waits
    # at a barrier for the other two (one after the other, the first would time out).
    barrier = threading.Barrier(3, timeout=10)

    def waits(_nodes: object) -> None:
        barrier.wait()

    def fails(_nodes: object) -> None:
        barrier.wait()
        raise AssertionError("not done\nsecond line")

    lab = _synthetic_lab({"c": waits, "a": fails, "b": waits})
    results = labs_checks.run_checks(lab, nodes=None)
    assert [(r.id, r.ok, r.detail) for r in results] == [("c", True, ""), ("a", False, "not done"), ("b", True, "")]


def test_one_worker_runs_checks_one_after_the_other() -> None:
    order: list[str] = []
    lab = _synthetic_lab({k: (lambda _n, k=k: order.append(k)) for k in ("x", "y", "z")})
    assert [r.ok for r in labs_checks.run_checks(lab, nodes=None, workers=1)] == [True, True, True]
    assert order == ["x", "y", "z"]


def test_a_lab_whose_layers_are_off_is_refused_with_the_switch_to_turn_on(tmp_path: Path) -> None:
    from labkit.cluster.kit import Kit
    from labkit.errors import KitError
    from labkit.labs import actions
    from tests.unit.configs import LIBVIRT_HOST, VALID, write

    k = Kit(config_path=write(tmp_path, VALID, override="layers: {kubernetes: true, istio: false, knative: false}\n"), state_dir=tmp_path / "state", say=lambda _: None)
    k.resolve(LIBVIRT_HOST)
    actions.require_layers(k, lab("03"))  # kubernetes is on: nothing to say
    with pytest.raises(KitError, match=r"lab 05 needs the knative, istio layer\(s\): set layers.knative: true, layers.istio: true"):
        actions.require_layers(k, lab("05"))


def test_lab_check_with_timing_prints_each_checks_seconds_slowest_first(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    from invoke import Context, Exit

    from labkit.cli import labs as cli_labs

    results = [labs_checks.Result("virt_recorded", "s1", True, "h", "", 0.25), labs_checks.Result("snapshot_taken", "s5", False, "h", "no snapshot", 1.5)]
    monkeypatch.setattr(cli_labs, "kit", lambda: object())
    monkeypatch.setattr(cli_labs.actions, "check", lambda k, the_lab, language: (results, []))
    monkeypatch.setattr(cli_labs.actions, "share", lambda k, the_lab, r: None)
    with pytest.raises(Exit):
        cli_labs.lab_check(Context(), "01", lang="en", timing=True)
    out = capsys.readouterr().out.splitlines()
    assert out[-2:] == ["     1.50 s  snapshot_taken", "     0.25 s  virt_recorded"]
    with pytest.raises(Exit):
        cli_labs.lab_check(Context(), "01", lang="en")
    assert "0.25 s" not in capsys.readouterr().out
