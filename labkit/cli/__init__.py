"""The invoke tasks: parse flags, call ``labkit.cluster.kit``, turn expected failures into messages.

``tasks.py`` at the repository root only exposes ``namespace`` from here.
"""

from __future__ import annotations

import contextlib
import functools
import os
import shlex
import subprocess
import sys
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, TypeVar

from invoke import Collection, Context, Exit, task
from rich.console import Console
from rich.table import Table

from labkit import paths
from labkit.cache import fetch as cache_fetch
from labkit.cache import manifest as cache_manifest
from labkit.cache import pin as cache_pin
from labkit.cache import store
from labkit.cluster.kit import ROOT, Kit
from labkit.errors import KitError
from labkit.labs import checks, discovery
from labkit.labs import progress as labs_progress

console = Console(highlight=False)
F = TypeVar("F", bound=Callable[..., Any])


def _say(line: str) -> None:
    console.print(line, markup=False, soft_wrap=True)


def friendly(fn: F) -> F:
    """Expected failures end with the message and exit 1, never a traceback."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except KitError as exc:
            raise Exit(f"✗ {exc}", code=1) from None
        except KeyboardInterrupt:
            raise Exit("✗ interrupted; run the same command again to continue (every step is idempotent)", code=130) from None

    return wrapper  # type: ignore[return-value]


@contextlib.contextmanager
def _progress(items: Sequence[Any]) -> Iterator[Any]:
    """A rich progress display of a fetch: one bar per artifact with bytes, rate and ETA."""
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn, TransferSpeedColumn

    columns = (TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TransferSpeedColumn(), TimeRemainingColumn())
    with Progress(*columns, console=console, transient=False) as bar:
        tasks = {item.key: bar.add_task(item.key, total=None, visible=False) for item in items}

        class Bars(cache_fetch.Reporter):
            def start(self, item: Any, total: int | None) -> None:
                bar.update(tasks[item.key], total=total, visible=True)

            def advance(self, item: Any, n: int) -> None:
                bar.advance(tasks[item.key], n)

            def done(self, item: Any, outcome: str) -> None:
                if item.key in tasks and outcome != "present":
                    task = bar.tasks[tasks[item.key]]
                    bar.update(tasks[item.key], description=f"{item.key}: {outcome}", total=task.completed or 1, completed=task.completed or 1, visible=True)

        yield Bars()


def kit() -> Kit:
    return Kit(say=_say, reporter=_progress)


# ---------------------------------------------------------------------- cluster


@task(
    help={
        "skip_doctor": "Do not check the host first.",
        "tags": "Only run the roles with these Ansible tags (comma-separated).",
        "locked": "Refuse, before anything is fetched or booted, any artifact labkit/artifacts.yml does not pin (like `cargo --locked`).",
    }
)
@friendly
def up(c: Context, skip_doctor: bool = False, tags: str | None = None, locked: bool = False) -> None:
    """Bring the cluster up: validate sandbox.yml, fetch what the cache lacks, boot the VMs, write the inventory, run playbooks/site.yml."""
    kit().up(skip_doctor=skip_doctor, tags=tags, locked=locked)


@task(
    help={
        "tags": "Only run the roles with these Ansible tags (comma-separated).",
        "limit": "Only these nodes (Ansible --limit pattern).",
        "reset": "First take the Kubernetes layer down (kubeadm reset, pod network state; playbooks/reset.yml), then provision it again.",
    }
)
@friendly
def provision(c: Context, tags: str | None = None, limit: str | None = None, reset: bool = False) -> None:
    """Re-run the playbooks on the running VMs (no boot): after changing a role or a layer switch."""
    kit().provision(tags=tags, limit=limit, reset=reset)


@task
@friendly
def status(c: Context) -> None:
    """Show each node: role, private IP, CPUs, memory and VM state."""
    table = Table("node", "role", "ip", "cpus", "memory", "state")
    for row in kit().status():
        table.add_row(row["name"], row["role"], row["ip"], str(row["cpus"]), f"{row['memory']} MiB", row["state"])
    console.print(table)


@task(help={"node": "Name of the node (see `./kit status`).", "command": "Run this command instead of an interactive shell."})
@friendly
def ssh(c: Context, node: str, command: str | None = None) -> None:
    """Open a shell on NODE (or run one command there)."""
    code = kit().ssh(node, command)
    if code:
        raise Exit(code=code)


@task
@friendly
def halt(c: Context) -> None:
    """Shut the VMs down, keeping their disks (`./kit up` boots them again)."""
    kit().halt()


@task(help={"yes": "Do not ask for confirmation.", "box_volume": "Also remove the box's base volume from libvirt's pool (uploaded again by the next `up`)."})
@friendly
def destroy(c: Context, yes: bool = False, box_volume: bool = False) -> None:
    """Delete the VMs and their disks (the box and the artifact cache stay)."""
    k = kit()
    if not yes:
        if not sys.stdin.isatty():
            raise KitError("refusing to destroy without confirmation: pass --yes")
        answer = input(f"Delete every VM of {k.resolve().config.name} and its disk? [y/N] ")
        if answer.strip().lower() not in ("y", "yes"):
            raise KitError("not destroyed")
    k.destroy(box_volume=box_volume)


@task
@friendly
def config(c: Context) -> None:
    """Validate sandbox.yml (+ sandbox.local.yml), print the resolved cluster, write .state/resolved.json."""
    k = kit()
    resolved = k.resolve()
    _say(f"✓ {' + '.join(resolved.sources)} is valid → {k.resolved_path}")
    for note in resolved.extra.get("notes", []):
        _say(f"  ! {note}")
    table = Table("node", "role", "ip", "cpus", "memory")
    for n in resolved.nodes:
        table.add_row(n.name, n.role, n.ip, str(n.cpus), f"{n.memory} MiB")
    console.print(table)
    layers = ", ".join(resolved.enabled_layers()) or "none"
    _say(f"provider {resolved.provider} (libvirt driver {resolved.libvirt_driver}), box {resolved.box_name} ({resolved.arch}), layers: {layers}")


@task
@friendly
def doctor(c: Context) -> None:
    """Check the host against what sandbox.yml asks, one row per check with the remedy for each failure."""
    rows = kit().doctor()
    table = Table("", "check", "detail", "remedy")
    marks = {"ok": "[green]✓[/]", "warn": "[yellow]![/]", "fail": "[red]✗[/]"}
    for row in rows:
        table.add_row(marks[row.status], row.name, row.detail, row.remedy)
    console.print(table)
    failed = [r for r in rows if r.status == "fail"]
    if failed:
        raise Exit(f"✗ {len(failed)} check(s) failed: fix them before `./kit up`", code=1)


@task
@friendly
def kubeconfig(c: Context) -> None:
    """Write the cluster's admin kubeconfig to .state/kubeconfig (mode 0600) for kubectl on the host."""
    path = kit().kubeconfig()
    _say(f"wrote {path} (mode 0600). Use it with:\n  export KUBECONFIG={path}\n  kubectl get nodes")


@task
@friendly
def budget(c: Context) -> None:
    """The RAM budget: memory requests of every enabled layer, computed from the manifests in the cache and the kit's rendered values."""
    k = kit()
    report = k.budget()
    _say(report.report())
    resolved = k.resolve()
    guest = sum(n.memory for n in resolved.nodes)
    _say(f"guest RAM of this config: {guest} MiB over {len(resolved.nodes)} node(s); requests use {report.total / guest:.0%} of it (measured parts only)")


@task(
    help={
        "tags": "Re-run only these roles with all tuning off (comma-separated Ansible tags): a quicker benchmark.",
        "new_clusters": "First destroy the cluster and provision two new ones from the warm cache, Mitogen off then tuned (tens of minutes under emulation).",
    }
)
@friendly
def bench(c: Context, tags: str | None = None, new_clusters: bool = False) -> None:
    """Print provisioning figures: first run, re-runs with and without tuning, time per role (and new clusters side by side)."""
    from labkit.dev import bench as bench_mod

    bench_mod.run(kit(), say=_say, tags=tags, new_clusters=new_clusters)


# ---------------------------------------------------------------------- labs


def _lab(lab_id: str):  # type: ignore[no-untyped-def]

    return discovery.find(discovery.discover(), lab_id)


@task(name="list")
@friendly
def lab_list(c: Context) -> None:
    """List the labs: layer, minutes, whether their layers are installed, and your progress."""

    k = kit()
    enabled = k.resolve().enabled_layers()
    progress = labs_progress.Progress(k.progress_path)
    table = Table("lab", "title", "layer", "min", "status")
    for lab in discovery.discover():
        missing = lab.missing_layers(enabled)
        state = f"needs layers: {', '.join(missing)}" if missing else progress.status(lab)
        table.add_row(lab.id, lab.spec.title, lab.spec.layer, str(lab.spec.minutes), state)
    console.print(table)


@task(name="start", help={"lab": "Lab number, e.g. 01."})
@friendly
def lab_start(c: Context, lab: str) -> None:
    """Start LAB: take its starting snapshot (first time) or restore it, and show where the guide is."""
    the_lab = _lab(lab)
    action = kit().lab_start(the_lab)
    _say(f"✓ lab {the_lab.id} ({the_lab.spec.title}): starting snapshot {action}")
    needs = ", ".join(dict.fromkeys([*the_lab.spec.needs, the_lab.spec.layer]))
    _say(f"  about {the_lab.spec.minutes} minutes; it builds on: {needs}; {len(the_lab.spec.steps)} steps")
    _say(f"  guide: {the_lab.path.relative_to(ROOT) / 'README.md'}   then: ./kit lab.check {the_lab.id}")


@task(name="check", help={"lab": "Lab number, e.g. 01."})
@friendly
def lab_check(c: Context, lab: str) -> None:
    """Check LAB: ✓/✗ per check with a hint for each failure; non-zero exit when any fails."""
    import time as _time

    the_lab = _lab(lab)
    k = kit()
    start = _time.monotonic()
    nodes = k.lab_context(the_lab)
    results = checks.run_checks(the_lab, nodes)
    labs_progress.Progress(k.progress_path).checked(the_lab, results)
    for r in results:
        if r.ok:
            _say(f"  ✓ {r.id:<22} {r.step}")
        else:
            _say(f"  ✗ {r.id:<22} {r.step}\n      {r.detail}\n      hint: {r.hint}")
    failed = [r for r in results if not r.ok]
    if failed:
        for problem in checks.pull_problems(the_lab, nodes):
            _say(f"  ! {problem}")
    _say(f"{len(results) - len(failed)}/{len(results)} checks pass ({_time.monotonic() - start:.1f} s)")
    if failed:
        raise Exit(code=1)


@task(name="solve", help={"lab": "Lab number, e.g. 01."})
@friendly
def lab_solve(c: Context, lab: str) -> None:
    """Do LAB's remaining steps with the guide's own commands (README.md), each held to its checks."""
    the_lab = _lab(lab)
    runs = kit().lab_solve(the_lab)
    _say(f"✓ lab {the_lab.id} solved: {sum(r.ran for r in runs)} step(s) done by the guide's commands, {sum(not r.ran for r in runs)} done already")


@task(name="walk", help={"lab": "Lab number, e.g. 01."})
@friendly
def lab_walk(c: Context, lab: str) -> None:
    """Test LAB's guide on a just-started lab: run each step's commands as written; every check must fail before its step and pass after it."""
    the_lab = _lab(lab)
    runs = kit().lab_solve(the_lab, strict=True)
    for r in runs:
        _say(f"  step {r.number}  {r.seconds:6.1f} s  {r.title}")
    _say(f"✓ lab {the_lab.id}: the guide's {len(runs)} steps ran as written, each check failed before its step and passed after it")


@task(name="reset", help={"lab": "Lab number, e.g. 01."})
@friendly
def lab_reset(c: Context, lab: str) -> None:
    """Put every node back to LAB's starting snapshot (your own snapshots of this lab are dropped)."""
    the_lab = _lab(lab)
    kit().lab_reset(the_lab)
    _say(f"✓ lab {the_lab.id} is back at its start")


@task(name="status", help={"json": "Print the progress as JSON (for an instructor)."})
@friendly
def lab_status(c: Context, json: bool = False) -> None:
    """Your progress through the labs (kept in .state/labs-progress.json)."""
    import json as json_mod

    k = kit()
    progress = labs_progress.Progress(k.progress_path)
    if json:
        print(json_mod.dumps({"cluster": k.resolve().config.name, "labs": progress.data}, indent=2, sort_keys=True))
        return
    for lab in discovery.discover():
        _say(f"  {lab.id}  {progress.status(lab):<28} {lab.spec.title}")


@task(name="snapshot", help={"lab": "Lab number, e.g. 01.", "name": "Your name for the snapshot."})
@friendly
def lab_snapshot(c: Context, lab: str, name: str) -> None:
    """Take a snapshot of the lab's nodes from the host, named labNN-NAME (dropped by lab.reset)."""
    the_lab = _lab(lab)
    snap = kit().lab_snapshot(the_lab, name)
    _say(f"✓ snapshot {snap} taken; go back to it with `./kit lab.restore {the_lab.id} {name}`")


@task(name="restore", help={"lab": "Lab number, e.g. 01.", "name": "The name given to lab.snapshot."})
@friendly
def lab_restore(c: Context, lab: str, name: str) -> None:
    """Put the lab's nodes back to your snapshot labNN-NAME (taken with lab.snapshot)."""
    the_lab = _lab(lab)
    snap = kit().lab_snapshot(the_lab, name, restore=True)
    _say(f"✓ the lab's nodes are back at {snap}")


# ---------------------------------------------------------------------- box


@task(help={"force": "Rebuild even if a box from the same recipe exists."}, default=True)
@friendly
def build(c: Context, force: bool = False) -> None:
    """Build the Debian box for libvirt from Debian's packages (needs root) and add it to Vagrant."""
    kit().build_box(force=force)


@task(
    name="bench",
    help={
        "boxes": "Box files to boot, the first being the one the others are compared with (default: every box in the cache's boxes folder).",
        "runs": "Boots per box (default 3; the median counts).",
    },
    iterable=["boxes"],
)
@friendly
def box_bench(c: Context, boxes: list[str] | None = None, runs: int = 3) -> None:
    """Boot each box to SSH as a new VM's first boot, side by side, and print the medians as ratios (QEMU, loopback only)."""
    from labkit.dev import boxbench

    paths = [Path(b) for b in boxes] if boxes else sorted((kit().root / ".cache/boxes").glob("*.box"))
    boxbench.run(paths, boxbench.vagrant_private_key(), runs=runs, say=_say)


# ---------------------------------------------------------------------- cache


@task(
    help={
        "all_arches": "Fetch for amd64 and arm64 (an instructor preparing mixed laptops).",
        "jobs": "Parallel downloads (default 4).",
        "locked": "Refuse any artifact labkit/artifacts.yml does not pin (like `npm ci`).",
    }
)
@friendly
def fetch(c: Context, all_arches: bool = False, jobs: int = 4, locked: bool = False) -> None:
    """Fill the artifact cache (before a workshop): only what is missing, resumable, verified, in parallel; pins on first fetch."""
    k = kit()
    report = k.fetch(["amd64", "arm64"] if all_arches else None, locked=locked, jobs=jobs)
    _say(f"✓ the cache in {k.resolve().cache_dir} holds all {len(report.outcomes)} artifact(s)")


@task(name="status")
@friendly
def cache_status(c: Context) -> None:
    """List every artifact the config needs: present/missing/corrupt, and its trust (non-zero exit unless all present)."""

    k = kit()
    cache_dir = k.resolve().cache_dir
    table = Table("artifact", "version", "arch", "state", "trust", "path")
    rows = store.status(cache_dir, k.cache_items())
    marks = {"present": "[green]present[/]", "missing": "[yellow]missing[/]", "corrupt": "[red]corrupt[/]"}
    for item, state in rows:
        version = item.version + (f" (pinned {item.pinned_version})" if item.pinned_version else "")
        table.add_row(item.name + (" (stand-in)" if item.standin else ""), version, item.arch, marks[state], item.trust, str(item.relpath()))
    console.print(table)
    bad = [item for item, state in rows if state != "present"]
    if bad:
        raise Exit(f"✗ {len(bad)} artifact(s) missing or corrupt: run `./kit cache.fetch` (or `./kit cache.add FILE`)", code=1)


@task(help={"file": "A file downloaded another way (USB stick, another machine)."})
@friendly
def add(c: Context, file: str) -> None:
    """Put FILE into the cache after checking it has the checksum of an artifact the config needs."""

    k = kit()
    item = store.add(k.resolve().cache_dir, k.cache_items(["amd64", "arm64"]), Path(file))
    _say(f"✓ added {item.name} {item.version} ({item.arch})")


@task(help={"fetch": "First fetch what is missing for amd64 and arm64, so every slot the config uses gets a pin (connected machine)."})
@friendly
def pin(c: Context, fetch: bool = False) -> None:
    """(Maintainers) write the cache's lock (pins taken on first fetch) into labkit/artifacts.yml, for review in a commit."""
    from labkit.cache.lock import Lock

    k = kit()
    if fetch:
        k.fetch(["amd64", "arm64"])
    written, errors = cache_pin.pin_from_lock(paths.MANIFEST, Lock(k.resolve().cache_dir), say=_say)
    errors += _loose_images(k)
    if errors:
        raise KitError("some checksums could not be pinned:\n" + "\n".join(f"  - {e}" for e in errors))
    _say(f"✓ {written} pin(s) written into {paths.MANIFEST.relative_to(ROOT)}: review them with `git diff` and commit")


def _loose_images(k: Kit) -> list[str]:
    """Release manifests in the cache that run images labkit/artifacts.yml does not pin."""

    manifest = cache_manifest.load_manifest([paths.MANIFEST])
    errors = []
    for item, state in store.status(k.resolve().cache_dir, k.cache_items()):
        if state == "present" and item.kind == "manifest" and item.url.endswith((".yaml", ".yml")):
            loose = cache_pin.unpinned_images((k.resolve().cache_dir / item.relpath()).read_text(), manifest)
            if loose:
                errors.append(f"{item.name} {item.version}: runs images labkit/artifacts.yml does not pin: {', '.join(loose)} (add them as image artifacts and to the role's list)")
    return errors


@task(name="serve")
@friendly
def cache_serve(c: Context) -> None:
    """Serve the artifact cache to the nodes until Ctrl-C (for lab steps that pull from it by hand)."""
    import threading

    from labkit.cache import serve

    resolved = kit().resolve()
    with serve.serving(resolved.cache_dir, resolved.cache_host, resolved.config.cache.port, allow=[*serve.LOOPBACK, resolved.config.network.cidr]) as url:
        _say(f"serving {resolved.cache_dir} at {url} — Ctrl-C to stop")
        threading.Event().wait()


@task(name="lock-debs", help={"suite": "Debian suite of the nodes (default: the box's suite)."})
@friendly
def lock_debs(c: Context, suite: str | None = None) -> None:
    """(Maintainers) pin the Debian packages the roles install, with dependencies and checksums, in labkit/artifacts-debs.yml."""
    from labkit.cache import debs

    resolved = kit().resolve()
    debs.lock(suite or resolved.config.box.suite, ["amd64", "arm64"], mirror=resolved.config.box.mirror, say=_say)


@task(help={"out": "Folder of the double (default: the folder of the config's first cache overlay)."})
@friendly
def standins(c: Context, out: str | None = None) -> None:
    """(CI only) build the upstream test double: stand-ins from Debian's packages at upstream paths with checksum files, a registry, a Debian mirror."""
    path = kit().build_double(Path(out) if out else None)
    _say(f"✓ overlay manifest: {path}; serve the double with `python -m labkit.cache.serve {path.parent} --port 8791`")


# ---------------------------------------------------------------------- tests


def _run(c: Context, cmd: list[str], **env: str) -> None:
    _say("$ " + shlex.join(cmd))
    try:
        result = subprocess.run(cmd, cwd=ROOT, env={**os.environ, **env}, check=False)
    except FileNotFoundError:
        raise Exit(f"✗ `{cmd[0]}` is not installed: run `./kit test` (it installs the pinned host packages as root on Debian) or see scripts/host-packages.txt", code=1) from None
    if result.returncode != 0:
        raise Exit(f"✗ `{shlex.join(cmd)}` failed (exit {result.returncode})", code=result.returncode)


def _bin(name: str) -> str:
    return str(Path(sys.executable).parent / name)


@task
def lint(c: Context) -> None:
    """Static checks: ruff, yamllint, shellcheck, ansible-lint (production profile), playbook syntax, vagrant validate."""
    _run(c, [_bin("ruff"), "check", "."])
    _run(c, [_bin("ruff"), "format", "--check", "."])
    _run(c, [_bin("yamllint"), "--strict", "."])
    scripts = [p for p in sorted((ROOT / "scripts").iterdir()) if p.suffix != ".txt"]
    scripts += sorted(ROOT.glob("labs/*/*.sh")) + sorted(ROOT.glob("labs/samples/*/serve")) + sorted(ROOT.glob("labs/samples/*/cgi-bin/*.cgi"))
    _run(c, ["shellcheck", "kit", ".ci/run", *(str(p.relative_to(ROOT)) for p in scripts)])
    _run(c, [_bin("ansible-lint")], ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"))
    _run(c, [_bin("ansible-playbook"), "--syntax-check", "-i", "tests/fixtures/inventory.yml", "playbooks/site.yml"], ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"))
    _vagrant_validate(c)


# Tools the suites need, and the Debian package (scripts/host-packages.txt) that brings each.
HOST_TOOLS = {"vagrant": "vagrant", "shellcheck": "shellcheck"}
FULL_TOOLS = {"virsh": "libvirt-clients", "qemu-system-x86_64": "qemu-system-x86", "debootstrap": "debootstrap", "dockerd": "docker.io", "dnsmasq": "dnsmasq-base"}


def _ensure_host_packages(c: Context, full: bool) -> None:
    """Install the pinned Debian packages the tests need when they are missing (root on Debian), else say how."""
    import shutil

    wanted = {**HOST_TOOLS, **(FULL_TOOLS if full else {})}
    missing = [tool for tool in wanted if shutil.which(tool) is None and not Path(f"/usr/sbin/{tool}").exists()]
    if not missing:
        return
    if os.geteuid() != 0 or not Path("/etc/debian_version").exists():
        raise Exit(f"✗ missing {', '.join(missing)}: install them (Debian/Ubuntu: `sudo scripts/install-host-packages`, the pins of scripts/host-packages.txt)", code=1)
    _say(f"installing the pinned host packages ({', '.join(missing)} missing)")
    _run(c, [str(ROOT / "scripts/install-host-packages")])


def _vagrant_validate(c: Context) -> None:
    import shutil
    import tempfile

    if shutil.which("vagrant") is None:
        raise Exit("✗ vagrant is not installed, so the Vagrantfile cannot be validated (see `./kit doctor`)", code=1)
    with tempfile.TemporaryDirectory(prefix="labkit-validate-") as tmp:
        for cfg in ("sandbox.yml", "tests/e2e/ci-cluster.yml"):
            env = {"LABKIT_CONFIG": str(ROOT / cfg), "LABKIT_STATE_DIR": str(Path(tmp) / Path(cfg).stem)}
            _run(c, [sys.executable, "-m", "labkit", "config"], **env)
            _run(c, ["vagrant", "validate"], **env, VAGRANT_DOTFILE_PATH=str(Path(tmp) / "vagrant"))


@task
def unit(c: Context) -> None:
    """Unit tests (no VMs): config rules, doctor checks, inventory, parsers, role logic."""
    _run(c, [sys.executable, "-m", "pytest", "-q", "-rs", "tests/unit"])


@task(help={"keep": "Leave the cluster running after the test (for debugging)."})
def vm_suite(c: Context, keep: bool = False) -> None:
    """End-to-end on real VMs: build the box, boot the 2-node CI cluster, re-run, destroy (needs root)."""
    env = {"LABKIT_E2E_KEEP": "1"} if keep else {}
    _run(c, [sys.executable, "-m", "pytest", "-v", "-s", "-p", "no:cacheprovider", "-m", "vm", "tests/e2e"], **env)


@task(help={"keep": "Keep the cluster afterwards (LABKIT_E2E_KEEP=1)."})
def e2e(c: Context, keep: bool = False) -> None:
    """The layers' end-to-end suites, Kubernetes then mesh and serverless (connected machine; skipped, with the reason, when the cache lacks the pinned upstream files)."""
    env = {"LABKIT_E2E_KEEP": "1"} if keep else {}
    suites = ["tests/e2e/test_kubernetes_layer.py", "tests/e2e/test_mesh_serverless.py"]
    _run(c, [sys.executable, "-m", "pytest", "-v", "-s", "-rs", "-p", "no:cacheprovider", "-m", "k8s", *suites], **env)


@task(help={"scenario": "Only this scenario (molecule/<name>); default: all of them."})
@friendly
def molecule(c: Context, scenario: str | None = None) -> None:
    """Every role's Molecule scenario on systemd containers (root): converge, idempotence, testinfra verify."""
    from labkit.dev.molecule import SCENARIOS, run_suite

    if scenario and scenario not in SCENARIOS:
        raise KitError(f"no Molecule scenario {scenario!r}: choose one of {', '.join(SCENARIOS)}")
    times = run_suite((scenario,) if scenario else SCENARIOS, say=_say)
    _say("molecule suite times:\n" + "\n".join(f"  {name:<34} {secs:7.1f} s" for name, secs in times.items()))


@task(help={"full": "Also every role's Molecule scenario and the end-to-end suite on real VMs (root; dockerd and libvirtd started in network namespaces when not running)."})
def everything(c: Context, full: bool = False) -> None:
    """Run the tests: static checks and unit tests; with --full also Molecule, the real two-VM end-to-end run and the Kubernetes e2e suite."""
    _ensure_host_packages(c, full)
    lint(c)
    unit(c)
    if full:
        molecule(c)
        vm_suite(c)
        e2e(c)


@task(name="ladder")
@friendly
def lab_ladder(c: Context) -> None:
    """Lab 06: read the measurements from the control plane (~/lab06/ladder.txt), print the table, draw .state/ladder.png."""
    from labkit.labs import ladder

    k = kit()
    nodes = k.lab_context(_lab("06"))
    record = nodes.first.file("/home/vagrant/lab06/ladder.txt")
    if not record.exists:
        raise KitError("there is no ~/lab06/ladder.txt on the control plane yet: run measure.sh there first (lab 06, step 1)")
    rungs = ladder.parse(record.content_string)
    data, png = ladder.save(rungs, k.state_dir)
    _say(ladder.table(rungs))
    _say(f"wrote {data} and {png}")


@task(name="bench", help={"mib": "Size of the blob (MiB, default 200).", "clients": "Concurrent pulls (default 50)."})
@friendly
def cache_bench(c: Context, mib: int = 200, clients: int = 50) -> None:
    """Benchmark the cache server's registry endpoint against CNCF Distribution (docker-registry) on loopback, side by side."""
    from labkit.dev import servebench

    results = servebench.run(mib=mib, clients=clients, say=_say)
    for line in servebench.report(results, mib, clients):
        _say(line)


@task(name="samples")
@friendly
def cache_samples(c: Context) -> None:
    """Build the labs' sample images (labs/samples: web v1/v2, hello, cpu) into the cache from its busybox-static package."""
    from labkit.cluster.kit import host_arch
    from labkit.labs import samples

    samples.build(kit().resolve().cache_dir, host_arch(), say=_say)


namespace = Collection(up, provision, status, ssh, halt, destroy, config, doctor, kubeconfig, bench, budget)
namespace.add_collection(Collection("box", build, box_bench))
namespace.add_collection(Collection("cache", fetch, cache_status, add, pin, lock_debs, standins, cache_serve, cache_samples, cache_bench))
namespace.add_collection(Collection("lab", lab_list, lab_start, lab_check, lab_solve, lab_walk, lab_reset, lab_status, lab_snapshot, lab_restore, lab_ladder))
_tests = Collection("test")
_tests.add_task(everything, name="all", default=True)
_tests.add_task(lint)
_tests.add_task(unit)
_tests.add_task(vm_suite, name="vm")
_tests.add_task(molecule)
_tests.add_task(e2e)
namespace.add_collection(_tests)
