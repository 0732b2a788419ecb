"""What the commands do: resolve the config, boot the VMs, write the inventory, run playbooks.

``Kit`` ties the modules together for one cluster (one config file, one state folder).
The invoke tasks in ``labkit.cli`` only parse flags and call these methods.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from labkit import contract, paths
from labkit.cache import fetch as cache_fetch
from labkit.cache import manifest as cache_manifest
from labkit.cache import store
from labkit.cache.lock import Lock
from labkit.cache.trust import Mirrors
from labkit.cluster import box, host, inventory, runner
from labkit.cluster.config import load
from labkit.cluster.doctor import Check, run_checks
from labkit.cluster.resolved import Resolved
from labkit.cluster.vagrant import Vagrant
from labkit.errors import KitError
from labkit.labs import checks as labs_checks
from labkit.labs import context as labs_context
from labkit.labs import progress as labs_progress
from labkit.paths import ROOT


def host_arch() -> str:
    """The Debian name of this machine's architecture (the VMs run the same)."""
    return host.arch()


def atomic_write(path: Path, text: str, mode: int = 0o644) -> None:
    """Write via a temporary file and rename, so Ctrl-C never leaves half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    tmp.chmod(mode)
    tmp.replace(path)


@dataclass
class Phases:
    """Wall-clock time of each phase of a command, printed at the end."""

    say: Callable[[str], None] = print
    times: list[tuple[str, float]] = field(default_factory=list)

    @contextmanager
    def phase(self, name: str) -> Iterator[None]:
        self.say(f"==> {name}")
        start = time.monotonic()
        try:
            yield
        finally:
            self.times.append((name, time.monotonic() - start))

    def report(self) -> str:
        width = max((len(n) for n, _ in self.times), default=10)
        rows = [f"  {name:<{width}}  {secs:7.1f} s" for name, secs in self.times]
        total = sum(s for _, s in self.times)
        return "phase times:\n" + "\n".join(rows) + f"\n  {'total':<{width}}  {total:7.1f} s"


class Kit:
    """One cluster: its config file and its state folder."""

    def __init__(
        self,
        root: Path = ROOT,
        config_path: Path | None = None,
        state_dir: Path | None = None,
        say: Callable[[str], None] = print,
        reporter: Callable[[Sequence[cache_manifest.Item]], AbstractContextManager[cache_fetch.Reporter]] | None = None,
    ):
        self.root = root
        # The fetch display: `./kit` shows rich progress bars; the default says one line per artifact.
        self.reporter = reporter or self._line_reporter
        self.config_path = Path(config_path or os.environ.get("LABKIT_CONFIG") or root / "sandbox.yml").resolve()
        self.default_state_dir = root / ".state"
        self.state_dir = Path(state_dir or os.environ.get("LABKIT_STATE_DIR") or self.default_state_dir).resolve()
        self.say = say
        self._resolved: Resolved | None = None

    @contextmanager
    def _line_reporter(self, items: Sequence[cache_manifest.Item]) -> Iterator[cache_fetch.Reporter]:
        say = self.say

        class Lines(cache_fetch.Reporter):
            def done(self, item: cache_manifest.Item, outcome: str) -> None:
                if outcome != "present":
                    say(f"    {item.key}: {outcome}")

        yield Lines()

    # ----------------------------------------------------------------- state files
    @property
    def resolved_path(self) -> Path:
        return self.state_dir / "resolved.json"

    @property
    def inventory_path(self) -> Path:
        return self.state_dir / "inventory.yml"

    @property
    def last_run_path(self) -> Path:
        return self.state_dir / "last-run.json"

    @property
    def first_run_path(self) -> Path:
        """The first provisioning of this cluster (kept until `destroy`, for the benchmark)."""
        return self.state_dir / "first-run.json"

    def vagrant(self) -> Vagrant:
        return Vagrant(self.root, self.state_dir, self.default_state_dir)

    # ----------------------------------------------------------------- config
    def resolve(self, context: host.HostContext | None = None) -> Resolved:
        """Load, validate and resolve the config; write the resolved form for the Vagrantfile."""
        if self._resolved is None:
            resolved = load(self.config_path, context or host.context(self.state_dir))
            atomic_write(self.resolved_path, json.dumps(resolved.to_dict(), indent=2) + "\n")
            self._resolved = resolved
        return self._resolved

    def doctor(self) -> list[Check]:
        return run_checks(host.gather(self.state_dir), self.resolve())

    # ----------------------------------------------------------------- cache
    def cache_items(self, arches: Sequence[str] | None = None, *, locked: bool = False) -> list[cache_manifest.Item]:
        """What the enabled layers need from the cache, for the nodes' architecture (or
        ``arches``), each with its pin (the repository's, else the cache's lock)."""
        resolved = self.resolve()
        manifest = cache_manifest.load_manifest([paths.MANIFEST, paths.DEBS_MANIFEST, *resolved.overlays])
        versions = resolved.config.versions.model_dump()
        lock = Lock(resolved.cache_dir)
        items: list[cache_manifest.Item] = []
        for arch in arches or [host_arch()]:
            addons = [name for name, on in resolved.config.addons.model_dump().items() if on]
            items += cache_manifest.plan(manifest, versions, [*resolved.enabled_layers(), "labs"], arch, addons=addons, lock=lock, locked=locked)
        return items

    def mirrors(self) -> Mirrors:
        m = self.resolve().config.cache.mirrors
        return Mirrors(files=dict(m.files), registries=dict(m.registries))

    def fetch(self, arches: Sequence[str] | None = None, *, locked: bool = False, jobs: int = 4) -> cache_fetch.FetchReport:
        """Fetch what the cache lacks for the config, pinning on first fetch; stop with every
        error at the end (nothing half-written: each file lands only once verified)."""
        from labkit.cache.debs import MovedDebs

        resolved = self.resolve()
        items = self.cache_items(arches, locked=locked)
        states = store.status(resolved.cache_dir, items)
        todo = [i for i, st in states if st != "present"]
        if not todo:
            self.say(f"    all {len(items)} artifact(s) already in the cache, verified: nothing to fetch")
            return cache_fetch.FetchReport([cache_fetch.Outcome(i, "present", pin=i.pin) for i in items], [])
        self.say(f"    fetching {len(todo)} of {len(items)} artifact(s) into {resolved.cache_dir}")
        moved = MovedDebs(resolved.config.box.suite, resolved.apt_keyring, say=self.say)
        with self.reporter(todo) as reporter:
            report = cache_fetch.fetch(resolved.cache_dir, items, jobs=jobs, mirrors=self.mirrors(), lock=Lock(resolved.cache_dir), reporter=reporter, moved=moved, states=states)
        for line in report.summary():
            self.say(f"    {line}")
        if report.errors:
            raise KitError("some artifacts could not be fetched (what was fetched is kept; run the same command again):\n" + "\n".join(f"  - {e}" for e in report.errors))
        return report

    def build_double(self, out: Path | None = None) -> Path:
        """(CI) Build the upstream test double where the config's overlay expects it."""
        from labkit.dev import double

        resolved = self.resolve()
        if out is None:
            if not resolved.overlays:
                raise KitError("the config lists no cache.overlays: give --out, or use tests/e2e/ci-cluster.yml")
            out = resolved.overlays[0].parent
        manifest = cache_manifest.load_manifest([paths.MANIFEST, paths.DEBS_MANIFEST])
        versions = resolved.config.versions.model_dump()
        debs = [i for i in cache_manifest.plan(manifest, versions, [*resolved.enabled_layers(), "labs"], host_arch()) if i.kind == "deb"]
        return double.build(out, versions, manifest, debs, suite=resolved.config.box.suite, arch=host_arch(), say=self.say)

    def custom_resource_schemas(self) -> Any:
        """Istio's and Knative's CRDs from the cache, to check custom resources offline."""
        from labkit.cache import crds

        resolved = self.resolve()
        manifest = cache_manifest.load_manifest([paths.MANIFEST, *resolved.overlays])
        return crds.from_cache(resolved.cache_dir, manifest, resolved.config.versions.model_dump())

    # ----------------------------------------------------------------- box
    def box_spec(self, resolved: Resolved) -> box.BoxSpec:
        b = resolved.config.box
        return box.BoxSpec(name=resolved.box_name, suite=b.suite, mirror=b.mirror)

    def build_box(self, force: bool = False) -> Path:
        resolved = self.resolve()
        spec = self.box_spec(resolved)
        rebuilt = force or not box.box_file(self.root / ".cache", spec).exists()
        path = box.build(spec, self.root / ".cache", force=force, say=self.say)
        self.say(f"adding {path.name} to Vagrant as {spec.name}")
        self.vagrant().box_add(spec.name, path)
        if rebuilt and resolved.provider == "libvirt":
            self._retire_old_box_volumes(resolved)
        return path

    def _retire_old_box_volumes(self, resolved: Resolved) -> None:
        """libvirt keeps the previous box's base volume (a few hundred MB) after a rebuild.
        Delete it when no VM's disk is built on it, else say how to move those VMs."""
        from labkit.cluster import libvirt

        pool = resolved.config.libvirt.storage_pool
        try:
            if shutil.which("virsh") is None or not libvirt.pool_exists(pool):
                return
            removed, in_use = libvirt.retire_box_volumes(resolved.box_name, pool)
        except KitError as exc:  # libvirtd not running yet: nothing of the old box to start from
            self.say(f"    (could not look for the previous box's volume in libvirt: {exc})")
            return
        for vol in removed:
            self.say(f"    removed the previous box's base volume {vol} from libvirt (no VM used it)")
        for vol in in_use:
            self.say(f"    ! VMs still run on the previous box ({vol}); `./kit destroy --box-volume`, then `./kit up`, moves them to the new one")

    def ensure_box(self, resolved: Resolved) -> None:
        """A local box must be built and added before `vagrant up` (official boxes download)."""
        if not resolved.config.box.local:
            return
        spec = self.box_spec(resolved)
        built = box.box_file(self.root / ".cache", spec)
        if spec.name in self.vagrant().box_names() and built.exists():
            return
        if not built.exists() and os.geteuid() != 0:
            raise KitError(f"the local box {spec.name} is not built yet: run `sudo ./kit box.build` once (about 3 minutes), then `./kit up`.")
        self.build_box()

    # ----------------------------------------------------------------- inventory
    def write_inventory(self, resolved: Resolved) -> Path:
        names = [n.name for n in resolved.nodes]
        endpoints = self.vagrant().ssh_config(names)
        artifacts = cache_manifest.role_vars(self.cache_items())
        atomic_write(self.inventory_path, inventory.dump(inventory.render(resolved.to_dict(), endpoints, artifacts=artifacts)), 0o600)
        return self.inventory_path

    def check_cache(self, *, locked: bool = False) -> list[cache_manifest.Item]:
        """Refuse to go on when an artifact the layers need is missing or corrupt."""
        items = self.cache_items(locked=locked)
        cache_dir = self.resolve().cache_dir
        store.require_complete(cache_dir, items)
        self.say(f"    all {len(items)} artifact(s) present and verified in {cache_dir}")
        from labkit.labs import samples

        if not samples.present(cache_dir):
            self.say("    building the labs' sample images (labs/samples) into the cache")
            samples.build(cache_dir, host_arch(), say=self.say)
        return items

    def run_site(self, resolved: Resolved, inv: Path, *, tags: str | None = None, limit: str | None = None, env: dict[str, str] | None = None) -> runner.PlaybookRun:
        """Run site.yml while the host serves the cache on its private-network address."""
        from labkit.cache import serve

        with serve.serving(resolved.cache_dir, resolved.cache_host, resolved.config.cache.port, allow=[*serve.LOOPBACK, resolved.config.network.cidr]) as url:
            self.say(f"    serving the artifact cache at {url} (until the playbooks end)")
            return runner.playbook(self.root, "site.yml", inv, tags=tags, limit=limit, emit=self.say, env=env, state_dir=self.state_dir)

    # ----------------------------------------------------------------- commands
    def up(self, *, skip_doctor: bool = False, tags: str | None = None, locked: bool = False, env: dict[str, str] | None = None) -> dict[str, Any]:
        phases = Phases(self.say)
        with phases.phase("validate the config"):
            resolved = self.resolve()
            self.say(f"    {resolved.config.name}: {len(resolved.nodes)} node(s) on {resolved.provider}, layers: {', '.join(resolved.enabled_layers()) or 'none'}")
            for note in resolved.extra.get("notes", []):
                self.say(f"    ! {note}")
            self.cache_items(locked=locked)  # --locked refuses what the repository does not pin, before anything
        if not skip_doctor:
            with phases.phase("check the host"):
                failed = [c for c in self.doctor() if c.status == "fail"]
                if failed:
                    rows = "\n".join(f"  ✗ {c.name}: {c.detail}. Fix: {c.remedy}" for c in failed)
                    raise KitError(f"the host is not ready, nothing was created:\n{rows}\n(`./kit doctor` shows every check)")
        with phases.phase("fetch what the cache lacks"):
            self.fetch(locked=locked)
        with phases.phase("check the artifact cache"):
            self.check_cache(locked=locked)
        with phases.phase("prepare the box"):
            self.ensure_box(resolved)
        with phases.phase(f"boot the VMs ({resolved.provider})"):
            self.vagrant().stream("up", "--no-provision", f"--provider={resolved.provider}", emit=self.say)
        with phases.phase("write the inventory"):
            inv = self.write_inventory(resolved)
        with phases.phase("provision (playbooks/site.yml)"):
            run = self.run_site(resolved, inv, tags=tags, env=env)
        return self._finish("up", phases, run, resolved)

    def provision(self, *, tags: str | None = None, limit: str | None = None, env: dict[str, str] | None = None, reset: bool = False) -> dict[str, Any]:
        phases = Phases(self.say)
        with phases.phase("validate the config"):
            resolved = self.resolve()
        with phases.phase("check the artifact cache"):
            self.check_cache()
        with phases.phase("write the inventory"):
            inv = self.running_inventory(resolved)
        if reset:
            with phases.phase("reset the Kubernetes layer (playbooks/reset.yml)"):
                runner.playbook(self.root, "reset.yml", inv, limit=limit, emit=self.say, state_dir=self.state_dir)
        with phases.phase("provision (playbooks/site.yml)"):
            run = self.run_site(resolved, inv, tags=tags, limit=limit, env=env)
        return self._finish("provision", phases, run, resolved)

    def running_inventory(self, resolved: Resolved) -> Path:
        """The inventory of the running VMs; stops when one is not running."""
        states = self.vagrant().status()
        down = [n.name for n in resolved.nodes if states.get(n.name) != "running"]
        if down:
            raise KitError(f"not running: {', '.join(down)}. Run `./kit up` first.")
        return self.write_inventory(resolved)

    @property
    def kubeconfig_path(self) -> Path:
        return self.state_dir / "kubeconfig"

    def kubeconfig(self) -> Path:
        """Copy the admin kubeconfig from the control plane to the state folder (mode 0600)."""
        resolved = self.resolve()
        if not resolved.config.layers.kubernetes:
            raise KitError("the kubernetes layer is off in the config: set layers.kubernetes: true and run `./kit up`")
        inv = self.running_inventory(resolved)
        dest = self.kubeconfig_path
        dest.parent.mkdir(parents=True, exist_ok=True)
        runner.playbook(self.root, "kubeconfig.yml", inv, extra=["-e", f"kubeconfig_dest={dest}"], emit=self.say, state_dir=self.state_dir)
        dest.chmod(0o600)
        return dest

    def budget(self) -> Any:
        """The memory requests of the enabled layers and add-ons, from the manifests in the cache."""
        from labkit.cluster import budget

        resolved = self.resolve()
        try:
            artifacts = cache_manifest.role_vars(self.cache_items())
        except KitError as exc:
            self.say(f"    the cache cannot be planned yet ({str(exc).splitlines()[0]}): only the kit's own parts are measured")
            artifacts = {}
        defaults = contract.all_defaults(self.root / "roles")
        addons = [name for name, on in resolved.config.addons.model_dump().items() if on]
        return budget.compute(resolved.cache_dir, artifacts, defaults, len(resolved.nodes), resolved.enabled_layers(), addons=addons)

    def _finish(self, command: str, phases: Phases, run: runner.PlaybookRun, resolved: Resolved) -> dict[str, Any]:
        summary = {
            "command": command,
            "finished": time.time(),
            "phases": [{"name": n, "seconds": round(s, 1)} for n, s in phases.times],
            "roles": run.role_times,
            "recap": {h: vars(r) for h, r in run.recap.items()},
            "changed": runner.total_changed(run.recap),
            "nodes": [vars(n) for n in resolved.nodes],
        }
        atomic_write(self.last_run_path, json.dumps(summary, indent=2) + "\n")
        if not self.first_run_path.exists():
            atomic_write(self.first_run_path, json.dumps(summary, indent=2) + "\n")
        self.say(phases.report())
        self.say(f"changed tasks: {summary['changed']} ({'nothing changed' if summary['changed'] == 0 else 'see above'})")
        for node in resolved.nodes:
            self.say(f"  {node.name:<12} {node.role:<14} {node.ip}")
        self.say("next: `./kit status`, `./kit ssh NODE`" + (", `./kit kubeconfig` for kubectl on the host" if resolved.config.layers.kubernetes else ""))
        return summary

    def status(self) -> list[dict[str, Any]]:
        resolved = self.resolve()
        states = self.vagrant().status()
        return [{**vars(n), "state": states.get(n.name, "unknown")} for n in resolved.nodes]

    def halt(self) -> None:
        self.resolve()
        self.vagrant().stream("halt", emit=self.say)

    def destroy(self, *, box_volume: bool = False) -> None:
        """Destroy the VMs; on libvirt, report what is left and optionally drop the box's base volume."""
        resolved = self.resolve()
        runner.close_ssh_masters(self.state_dir)
        self.vagrant().stream("destroy", "--force", emit=self.say)
        for path in (self.inventory_path, self.last_run_path, self.first_run_path):
            path.unlink(missing_ok=True)
        shutil.rmtree(self.state_dir / "facts", ignore_errors=True)  # facts of VMs that are gone
        if resolved.provider != "libvirt":
            return
        from labkit.cluster import libvirt

        pool = resolved.config.libvirt.storage_pool
        if box_volume:
            for vol in libvirt.remove_box_volumes(resolved.box_name, pool):
                self.say(f"    removed the box's base volume {vol} from pool {pool}")
        left = libvirt.leftovers(f"{resolved.config.name}-", pool)
        if not left.empty():
            raise KitError(f"libvirt still holds {left} after `vagrant destroy`; remove them with virsh (undefine / net-destroy / vol-delete)")
        self.say(f"    libvirt holds no domain, network or volume of {resolved.config.name}")

    def ssh(self, node: str, command: str | None = None) -> int:
        resolved = self.resolve()
        names = [n.name for n in resolved.nodes]
        if node not in names:
            raise KitError(f"no node named {node!r}; the nodes are: {', '.join(names)}")
        return self.vagrant().exec_ssh(node, command)

    # ----------------------------------------------------------------- labs
    @property
    def progress_path(self) -> Path:
        return self.state_dir / "labs-progress.json"

    def lab_nodes(self, lab: Any) -> list[str]:
        resolved = self.resolve()
        names = [n.name for n in resolved.nodes]
        wanted = [resolved.control_plane.name if n == "control-plane" else n for n in lab.spec.nodes if n != "first"]
        return [n for n in names if n in wanted] or names[:1]

    def _snapshot_lister(self) -> Callable[[str], list[str]]:
        resolved = self.resolve()
        if resolved.provider == "libvirt":
            from labkit.cluster import libvirt

            prefix = f"{resolved.config.name}-"
            return lambda node: libvirt.snapshots(prefix + node)
        return self.vagrant().snapshot_names

    def lab_context(self, lab: Any) -> Any:

        if not self.inventory_path.exists():
            raise KitError("the cluster has no inventory yet: run `./kit up` first")
        if "kubernetes" in lab.missing_layers([]) and not self.kubeconfig_path.exists():
            self.kubeconfig()  # the checks read the cluster through the Kubernetes client
        return labs_context.Nodes(
            self.inventory_path, self.lab_nodes(lab), self._snapshot_lister(), control_dir=self.state_dir / "cp", kubeconfig=self.kubeconfig_path, state_dir=self.state_dir
        )

    def lab_require_layers(self, lab: Any) -> None:
        missing = lab.missing_layers(self.resolve().enabled_layers())
        if missing:
            keys = ", ".join(f"layers.{m}: true" for m in missing)
            raise KitError(f"lab {lab.id} needs the {', '.join(missing)} layer(s): set {keys} in sandbox.local.yml and run `./kit up`")

    def lab_start(self, lab: Any) -> str:
        """Restore the lab's starting snapshot, or take it on first start."""

        self.lab_require_layers(lab)
        resolved = self.resolve()
        names = [n.name for n in resolved.nodes]
        lister = self._snapshot_lister()
        lacking = [n for n in names if lab.snapshot not in lister(n)]
        if not lacking:
            self.say(f"restoring the starting snapshot {lab.snapshot} of every node")
            self.vagrant().snapshot("restore", lab.snapshot, names)
            runner.close_ssh_masters(self.state_dir)
            action = "restored"
        else:
            self.lab_files(lab)  # before the snapshot, so lab.reset brings them back
            # Only where it is missing: an interrupted lab.start left it on some nodes.
            self.say(f"taking the starting snapshot {lab.snapshot} of {', '.join(lacking)} (once per lab)")
            self.vagrant().snapshot("save", lab.snapshot, lacking)
            action = "taken"
        labs_progress.Progress(self.progress_path).started(lab)
        return action

    def lab_files(self, lab: Any) -> list[Path]:
        """Put the lab's manifests and scripts in ~/labNN on its nodes, and its images in
        containerd on every node, from the cache the kit serves meanwhile (playbooks/lab-files.yml)."""
        from labkit.cache import serve

        files = sorted([*lab.path.glob("manifests/*.yaml"), *lab.path.glob("*.sh")])
        nodes = self.lab_nodes(lab)
        self.say(f"putting the lab's files in ~/lab{lab.id} on {', '.join(nodes)}: {', '.join(f.name for f in files) or '(an empty folder)'}")
        if lab.spec.images:
            self.say(f"pulling the lab's images into containerd on every node: {', '.join(lab.spec.images)}")
        resolved = self.resolve()
        inv = self.running_inventory(resolved)
        extra = json.dumps({"lab_id": lab.id, "lab_nodes": nodes, "lab_files": [str(f) for f in files], "lab_images": lab.spec.images})
        with serve.serving(resolved.cache_dir, resolved.cache_host, resolved.config.cache.port, allow=[*serve.LOOPBACK, resolved.config.network.cidr]):
            runner.playbook(self.root, "lab-files.yml", inv, extra=["-e", extra], emit=lambda _: None, state_dir=self.state_dir)
        return files

    def lab_snapshot(self, lab: Any, name: str, restore: bool = False) -> str:
        """Take (or restore) the student's own snapshot labNN-NAME of the lab's nodes."""
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,39}", name):
            raise KitError(f"{name!r} cannot name a snapshot: use up to 40 letters, digits, '.', '_' or '-'")
        snap = f"lab{lab.id}-{name}"
        nodes = self.lab_nodes(lab)
        if restore:
            lister = self._snapshot_lister()
            lacking = [n for n in nodes if snap not in lister(n)]
            if lacking:
                raise KitError(f"{', '.join(lacking)} has no snapshot {snap}: take it first with `./kit lab.snapshot {lab.id} {name}`")
            self.vagrant().snapshot("restore", snap, nodes)
            runner.close_ssh_masters(self.state_dir)
        else:
            self.vagrant().snapshot("save", snap, nodes)
        return snap

    def lab_reset(self, lab: Any) -> None:
        """Put every node back to the lab's starting snapshot and drop the student's own snapshots."""

        resolved = self.resolve()
        names = [n.name for n in resolved.nodes]
        lister = self._snapshot_lister()
        if not all(lab.snapshot in lister(n) for n in names):
            raise KitError(f"lab {lab.id} has no starting snapshot yet: run `./kit lab.start {lab.id}` first")
        self.vagrant().snapshot("restore", lab.snapshot, names)
        runner.close_ssh_masters(self.state_dir)
        for node in names:
            for snap in lister(node):
                if snap.startswith(f"lab{lab.id}-"):
                    self.vagrant().snapshot("delete", snap, [node])
        labs_progress.Progress(self.progress_path).reset(lab)

    def lab_solve(self, lab: Any, strict: bool = False) -> list[Any]:
        """Walk the lab's guide (labkit.labs.guide): each step's own commands, as the student runs
        them, held to the step's checks. ``strict`` (`./kit lab.walk`): every step's checks
        must also fail before it, as on a lab just started."""
        from labkit.labs import guide

        self.lab_require_layers(lab)
        nodes = self.lab_context(lab)
        try:
            runs = guide.walk(
                lab,
                nodes,
                guide.Runner(nodes, self.root, self.say),
                lambda ids: labs_checks.run_checks(lab, nodes, only=ids),
                self.say,
                strict=strict,
                after_host=lambda: runner.close_ssh_masters(self.state_dir),
            )
        except KitError as exc:
            problems = labs_checks.pull_problems(lab, nodes)
            raise KitError("\n  ".join([str(exc), *problems])) from None
        labs_progress.Progress(self.progress_path).solved(lab)
        return runs
