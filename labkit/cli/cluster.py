"""The cluster's tasks (everyone who runs `up`): parse flags, call one function, print."""

from __future__ import annotations

import sys

from invoke import Context, Exit, task
from rich.table import Table

from labkit.cli.common import console, friendly, kit, say
from labkit.cluster import boxes, lifecycle
from labkit.errors import KitError

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
    lifecycle.up(kit(), skip_doctor=skip_doctor, tags=tags, locked=locked)


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
    lifecycle.provision(kit(), tags=tags, limit=limit, reset=reset)


@task
@friendly
def status(c: Context) -> None:
    """Show each node: role, private IP, CPUs, memory and VM state."""
    table = Table("node", "role", "ip", "cpus", "memory", "state")
    for row in lifecycle.status(kit()):
        table.add_row(row["name"], row["role"], row["ip"], str(row["cpus"]), f"{row['memory']} MiB", row["state"])
    console.print(table)


@task(help={"node": "Name of the node (see `./kit status`).", "command": "Run this command instead of an interactive shell."})
@friendly
def ssh(c: Context, node: str, command: str | None = None) -> None:
    """Open a shell on NODE (or run one command there)."""
    code = lifecycle.ssh(kit(), node, command)
    if code:
        raise Exit(code=code)


@task
@friendly
def halt(c: Context) -> None:
    """Shut the VMs down, keeping their disks (`./kit up` boots them again)."""
    lifecycle.halt(kit())


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
    lifecycle.destroy(k, box_volume=box_volume)


@task
@friendly
def config(c: Context) -> None:
    """Validate sandbox.yml (+ sandbox.local.yml), print the resolved cluster, write .state/resolved.json."""
    k = kit()
    resolved = k.resolve()
    say(f"✓ {' + '.join(resolved.sources)} is valid → {k.resolved_path}")
    for note in resolved.extra.get("notes", []):
        say(f"  ! {note}")
    table = Table("node", "role", "ip", "cpus", "memory")
    for n in resolved.nodes:
        table.add_row(n.name, n.role, n.ip, str(n.cpus), f"{n.memory} MiB")
    console.print(table)
    layers = ", ".join(resolved.enabled_layers()) or "none"
    say(f"provider {resolved.provider} (libvirt driver {resolved.libvirt_driver}), box {resolved.box_name} ({resolved.arch}), layers: {layers}")


@task
@friendly
def doctor(c: Context) -> None:
    """Check the host against what sandbox.yml asks, one row per check with the remedy for each failure."""
    rows = lifecycle.doctor(kit())
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
    path = lifecycle.kubeconfig(kit())
    say(f"wrote {path} (mode 0600). Use it with:\n  export KUBECONFIG={path}\n  kubectl get nodes")


@task
@friendly
def budget(c: Context) -> None:
    """The RAM budget: memory requests of every enabled layer, computed from the manifests in the cache and the kit's rendered values."""
    k = kit()
    report = lifecycle.budget(k)
    say(report.report())
    resolved = k.resolve()
    guest = sum(n.memory for n in resolved.nodes)
    say(f"guest RAM of this config: {guest} MiB over {len(resolved.nodes)} node(s); requests use {report.total / guest:.0%} of it (measured parts only)")


# ---------------------------------------------------------------------- box


@task(help={"force": "Rebuild even if a box from the same recipe exists."}, default=True)
@friendly
def build(c: Context, force: bool = False) -> None:
    """Build the Debian box for libvirt from Debian's packages (needs root) and add it to Vagrant."""
    boxes.build(kit(), force=force)
