"""The cluster's life cycle: up, provision, halt, destroy, status, ssh, kubeconfig, budget.

Plain functions over a ``Kit`` (one config file, one state folder); the invoke tasks in
``labkit.cli`` only parse flags and call one of them.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from labkit import contract
from labkit.cache import manifest as cache_manifest
from labkit.cache import supply
from labkit.cluster import boxes, host, inventory, runner
from labkit.cluster.doctor import Check, run_checks
from labkit.cluster.resolved import Resolved
from labkit.errors import KitError
from labkit.files import atomic_write

if TYPE_CHECKING:
    from labkit.cluster.kit import Kit


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


def doctor(k: Kit) -> list[Check]:
    facts = host.gather(k.state_dir)  # read once: the checks and the config's rules see the same host
    return run_checks(facts, k.resolve(facts.context()))


def write_inventory(k: Kit, resolved: Resolved) -> Path:
    names = [n.name for n in resolved.nodes]
    endpoints = k.vagrant().ssh_config(names)
    atomic_write(k.inventory_path, inventory.dump(inventory.render(resolved.to_dict(), endpoints, **supply.kit_vars(k))), 0o600)
    return k.inventory_path


def run_site(k: Kit, resolved: Resolved, inv: Path, *, tags: str | None = None, limit: str | None = None, env: dict[str, str] | None = None) -> runner.PlaybookRun:
    """Run site.yml while the host serves the cache on its private-network address."""

    from labkit.cache import serve  # aiohttp: imported by the commands that serve, not by every command

    with serve.serving(resolved.cache_dir, resolved.cache_host, resolved.config.cache.port, allow=[*serve.LOOPBACK, resolved.config.network.cidr]) as url:
        k.say(f"    serving the artifact cache at {url} (until the playbooks end)")
        return runner.playbook(k.root, "site.yml", inv, tags=tags, limit=limit, emit=k.say, env=env, state_dir=k.state_dir)


def up(k: Kit, *, skip_doctor: bool = False, tags: str | None = None, locked: bool = False, env: dict[str, str] | None = None) -> dict[str, Any]:
    phases = Phases(k.say)
    with phases.phase("validate the config"):
        resolved = k.resolve()
        k.say(f"    {resolved.config.name}: {len(resolved.nodes)} node(s) on {resolved.provider}, layers: {', '.join(resolved.enabled_layers()) or 'none'}")
        for note in resolved.extra.get("notes", []):
            k.say(f"    ! {note}")
        supply.cache_items(k, locked=locked)  # --locked refuses what the repository does not pin, before anything
    if not skip_doctor:
        with phases.phase("check the host"):
            failed = [c for c in doctor(k) if c.status == "fail"]
            if failed:
                rows = "\n".join(f"  ✗ {c.name}: {c.detail}. Fix: {c.remedy}" for c in failed)
                raise KitError(f"the host is not ready, nothing was created:\n{rows}\n(`./kit doctor` shows every check)")
    with phases.phase("fetch what the cache lacks"):
        supply.fetch(k, locked=locked)
    with phases.phase("check the artifact cache"):
        supply.verify(k, locked=locked)
        supply.ensure_samples(k)
    with phases.phase("prepare the box"):
        boxes.ensure(k, resolved)
    with phases.phase(f"boot the VMs ({resolved.provider})"):
        k.vagrant().stream("up", "--no-provision", f"--provider={resolved.provider}", emit=k.say)
    with phases.phase("write the inventory"):
        inv = write_inventory(k, resolved)
    with phases.phase("provision (playbooks/site.yml)"):
        run = run_site(k, resolved, inv, tags=tags, env=env)
    return finish(k, "up", phases, run, resolved)


def provision(k: Kit, *, tags: str | None = None, limit: str | None = None, env: dict[str, str] | None = None, reset: bool = False) -> dict[str, Any]:
    phases = Phases(k.say)
    with phases.phase("validate the config"):
        resolved = k.resolve()
    with phases.phase("check the artifact cache"):
        supply.verify(k)
        supply.ensure_samples(k)
    with phases.phase("write the inventory"):
        inv = running_inventory(k, resolved)
    if reset:
        with phases.phase("reset the Kubernetes layer (playbooks/reset.yml)"):
            runner.playbook(k.root, "reset.yml", inv, limit=limit, emit=k.say, state_dir=k.state_dir)
    with phases.phase("provision (playbooks/site.yml)"):
        run = run_site(k, resolved, inv, tags=tags, limit=limit, env=env)
    return finish(k, "provision", phases, run, resolved)


def running_inventory(k: Kit, resolved: Resolved) -> Path:
    """The inventory of the running VMs; stops when one is not running."""
    states = k.vagrant().status()
    down = [n.name for n in resolved.nodes if states.get(n.name) != "running"]
    if down:
        raise KitError(f"not running: {', '.join(down)}. Run `./kit up` first.")
    return write_inventory(k, resolved)


def kubeconfig(k: Kit) -> Path:
    """Copy the admin kubeconfig from the control plane to the state folder (mode 0600)."""
    resolved = k.resolve()
    if not resolved.config.layers.kubernetes:
        raise KitError("the kubernetes layer is off in the config: set layers.kubernetes: true and run `./kit up`")
    inv = running_inventory(k, resolved)
    dest = k.kubeconfig_path
    dest.parent.mkdir(parents=True, exist_ok=True)
    runner.playbook(k.root, "kubeconfig.yml", inv, extra=["-e", f"kubeconfig_dest={dest}"], emit=k.say, state_dir=k.state_dir)
    dest.chmod(0o600)
    return dest


def budget(k: Kit) -> Any:
    """The memory requests of the enabled layers and add-ons, from the manifests in the cache."""
    from labkit.cluster import budget as budget_mod

    resolved = k.resolve()
    try:
        artifacts = cache_manifest.role_vars(supply.cache_items(k))
    except KitError as exc:
        k.say(f"    the cache cannot be planned yet ({str(exc).splitlines()[0]}): only the kit's own parts are measured")
        artifacts = {}
    defaults = contract.all_defaults(k.root / "roles")
    addons = [name for name, on in resolved.config.addons.model_dump().items() if on]
    return budget_mod.compute(resolved.cache_dir, artifacts, defaults, len(resolved.nodes), resolved.enabled_layers(), addons=addons)


def finish(k: Kit, command: str, phases: Phases, run: runner.PlaybookRun, resolved: Resolved) -> dict[str, Any]:
    summary = {
        "command": command,
        "finished": time.time(),
        "phases": [{"name": n, "seconds": round(s, 1)} for n, s in phases.times],
        "roles": run.role_times,
        "tasks": run.task_times[:10],
        "recap": {h: vars(r) for h, r in run.recap.items()},
        "changed": runner.total_changed(run.recap),
        "nodes": [vars(n) for n in resolved.nodes],
    }
    atomic_write(k.last_run_path, json.dumps(summary, indent=2) + "\n")
    if not k.first_run_path.exists():
        atomic_write(k.first_run_path, json.dumps(summary, indent=2) + "\n")
    k.say(phases.report())
    k.say(f"changed tasks: {summary['changed']} ({'nothing changed' if summary['changed'] == 0 else 'see above'})")
    for node in resolved.nodes:
        k.say(f"  {node.name:<12} {node.role:<14} {node.ip}")
    k.say("next: `./kit status`, `./kit ssh NODE`" + (", `./kit kubeconfig` for kubectl on the host" if resolved.config.layers.kubernetes else ""))
    return summary


def status(k: Kit) -> list[dict[str, Any]]:
    resolved = k.resolve()
    states = k.vagrant().status()
    return [{**vars(n), "state": states.get(n.name, "unknown")} for n in resolved.nodes]


def halt(k: Kit) -> None:
    k.resolve()
    k.vagrant().stream("halt", emit=k.say)


def destroy(k: Kit, *, box_volume: bool = False) -> None:
    """Destroy the VMs; on libvirt, report what is left and optionally drop the box's base volume."""
    resolved = k.resolve()
    runner.close_ssh_masters(k.state_dir)
    k.vagrant().stream("destroy", "--force", emit=k.say)
    for path in (k.inventory_path, k.last_run_path, k.first_run_path):
        path.unlink(missing_ok=True)
    shutil.rmtree(k.state_dir / "facts", ignore_errors=True)  # facts of VMs that are gone
    if resolved.provider != "libvirt":
        return
    from labkit.cluster import libvirt

    pool = resolved.config.libvirt.storage_pool
    if box_volume:
        for vol in libvirt.remove_box_volumes(resolved.box_name, pool):
            k.say(f"    removed the box's base volume {vol} from pool {pool}")
    left = libvirt.leftovers(f"{resolved.config.name}-", pool)
    if not left.empty():
        raise KitError(f"libvirt still holds {left} after `vagrant destroy`; remove them with virsh (undefine / net-destroy / vol-delete)")
    k.say(f"    libvirt holds no domain, network or volume of {resolved.config.name}")


def ssh(k: Kit, node: str, command: str | None = None) -> int:
    resolved = k.resolve()
    names = [n.name for n in resolved.nodes]
    if node not in names:
        raise KitError(f"no node named {node!r}; the nodes are: {', '.join(names)}")
    return k.vagrant().exec_ssh(node, command)
