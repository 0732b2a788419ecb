"""What the lab commands do for one cluster: start (the starting snapshot), the lab's files
and images on its nodes, the check context, solve and walk (the guide), the student's
snapshots, reset. Plain functions over a ``Kit``; nothing here is specific to any lab.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from labkit.cluster import lifecycle, runner
from labkit.errors import KitError
from labkit.labs import checks as labs_checks
from labkit.labs import context as labs_context
from labkit.labs import guide
from labkit.labs import progress as labs_progress

if TYPE_CHECKING:
    from labkit.cluster.kit import Kit


def lab_nodes(k: Kit, lab: Any) -> list[str]:
    resolved = k.resolve()
    names = [n.name for n in resolved.nodes]
    wanted = [resolved.control_plane.name if n == "control-plane" else n for n in lab.spec.nodes if n != "first"]
    return [n for n in names if n in wanted] or names[:1]


def snapshot_lister(k: Kit) -> Callable[[str], list[str]]:
    resolved = k.resolve()
    if resolved.provider == "libvirt":
        from labkit.cluster import libvirt

        prefix = f"{resolved.config.name}-"
        return lambda node: libvirt.snapshots(prefix + node)
    return k.vagrant().snapshot_names


def context(k: Kit, lab: Any) -> Any:

    if not k.inventory_path.exists():
        raise KitError("the cluster has no inventory yet: run `./kit up` first")
    if "kubernetes" in lab.missing_layers([]) and not k.kubeconfig_path.exists():
        lifecycle.kubeconfig(k)  # the checks read the cluster through the Kubernetes client
    return labs_context.CheckContext(k.inventory_path, lab_nodes(k, lab), snapshot_lister(k), control_dir=k.state_dir / "cp", kubeconfig=k.kubeconfig_path, state_dir=k.state_dir)


def require_layers(k: Kit, lab: Any) -> None:
    missing = lab.missing_layers(k.resolve().enabled_layers())
    if missing:
        keys = ", ".join(f"layers.{m}: true" for m in missing)
        raise KitError(f"lab {lab.id} needs the {', '.join(missing)} layer(s): set {keys} in sandbox.local.yml and run `./kit up`")


def start(k: Kit, lab: Any) -> str:
    """Restore the lab's starting snapshot, or take it on first start."""

    require_layers(k, lab)
    resolved = k.resolve()
    names = [n.name for n in resolved.nodes]
    lister = snapshot_lister(k)
    lacking = [n for n in names if lab.snapshot not in lister(n)]
    if not lacking:
        k.say(f"restoring the starting snapshot {lab.snapshot} of every node")
        k.vagrant().snapshot("restore", lab.snapshot, names)
        runner.close_ssh_masters(k.state_dir)
        action = "restored"
    else:
        put_files(k, lab)  # before the snapshot, so lab.reset brings them back
        # Only where it is missing: an interrupted lab.start left it on some nodes.
        k.say(f"taking the starting snapshot {lab.snapshot} of {', '.join(lacking)} (once per lab)")
        k.vagrant().snapshot("save", lab.snapshot, lacking)
        action = "taken"
    labs_progress.Progress(k.progress_path).started(lab)
    return action


def put_files(k: Kit, lab: Any) -> list[Path]:
    """Put the lab's manifests and scripts in ~/labNN on its nodes, and its images in
    containerd on every node, from the cache the kit serves meanwhile (playbooks/lab-files.yml)."""

    files = sorted([*lab.path.glob("manifests/*.yaml"), *lab.path.glob("*.sh")])
    nodes = lab_nodes(k, lab)
    k.say(f"putting the lab's files in ~/lab{lab.id} on {', '.join(nodes)}: {', '.join(f.name for f in files) or '(an empty folder)'}")
    if lab.spec.images:
        k.say(f"pulling the lab's images into containerd on every node: {', '.join(lab.spec.images)}")
    resolved = k.resolve()
    inv = lifecycle.running_inventory(k, resolved)
    extra = json.dumps({"lab_id": lab.id, "lab_nodes": nodes, "lab_files": [str(f) for f in files], "lab_images": lab.spec.images})
    from labkit.cache import serve  # aiohttp: imported by the commands that serve, not by every command

    with serve.serving(resolved.cache_dir, resolved.cache_host, resolved.config.cache.port, allow=[*serve.LOOPBACK, resolved.config.network.cidr]):
        runner.playbook(k.root, "lab-files.yml", inv, extra=["-e", extra], emit=lambda _: None, state_dir=k.state_dir)
    return files


def snapshot(k: Kit, lab: Any, name: str, restore: bool = False) -> str:
    """Take (or restore) the student's own snapshot labNN-NAME of the lab's nodes."""
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,39}", name):
        raise KitError(f"{name!r} cannot name a snapshot: use up to 40 letters, digits, '.', '_' or '-'")
    snap = f"lab{lab.id}-{name}"
    nodes = lab_nodes(k, lab)
    if restore:
        lister = snapshot_lister(k)
        lacking = [n for n in nodes if snap not in lister(n)]
        if lacking:
            raise KitError(f"{', '.join(lacking)} has no snapshot {snap}: take it first with `./kit lab.snapshot {lab.id} {name}`")
        k.vagrant().snapshot("restore", snap, nodes)
        runner.close_ssh_masters(k.state_dir)
    else:
        k.vagrant().snapshot("save", snap, nodes)
    return snap


def reset(k: Kit, lab: Any) -> None:
    """Put every node back to the lab's starting snapshot and drop the student's own snapshots."""

    resolved = k.resolve()
    names = [n.name for n in resolved.nodes]
    lister = snapshot_lister(k)
    if not all(lab.snapshot in lister(n) for n in names):
        raise KitError(f"lab {lab.id} has no starting snapshot yet: run `./kit lab.start {lab.id}` first")
    k.vagrant().snapshot("restore", lab.snapshot, names)
    runner.close_ssh_masters(k.state_dir)
    for node in names:
        for snap in lister(node):
            if snap.startswith(f"lab{lab.id}-"):
                k.vagrant().snapshot("delete", snap, [node])
    labs_progress.Progress(k.progress_path).reset(lab)


def solve(k: Kit, lab: Any, strict: bool = False) -> list[Any]:
    """Walk the lab's guide (labkit.labs.guide): each step's own commands, as the student runs
    them, held to the step's checks. ``strict`` (`./kit lab.walk`): every step's checks
    must also fail before it, as on a lab just started."""

    require_layers(k, lab)
    nodes = context(k, lab)
    try:
        runs = guide.walk(
            lab,
            nodes,
            guide.Runner(nodes, k.root, k.say),
            lambda ids: labs_checks.run_checks(lab, nodes, only=ids),
            k.say,
            strict=strict,
            after_host=lambda: runner.close_ssh_masters(k.state_dir),
        )
    except KitError as exc:
        problems = labs_checks.pull_problems(lab, nodes)
        raise KitError("\n  ".join([str(exc), *problems])) from None
    labs_progress.Progress(k.progress_path).solved(lab)
    return runs


def check(k: Kit, lab: Any, language: str = "en") -> tuple[list[labs_checks.Result], list[str]]:
    """Run every check of ``lab`` (recorded in the student's progress); when one fails,
    also the lab's pods that cannot pull their image, with what to do (in ``language``)."""
    nodes = context(k, lab)
    results = labs_checks.run_checks(lab, nodes)
    labs_progress.Progress(k.progress_path).checked(lab, results)
    problems = labs_checks.pull_problems(lab, nodes, language) if not all(r.ok for r in results) else []
    return results, problems


def share(k: Kit, lab: Any, results: list[labs_checks.Result]) -> str | None:
    """Send the results to the class this kit joined, when the student shares progress
    (only each check's ✓/✗, the lab, the student's name and host); a line saying so."""
    classroom = k.resolve().config.classroom
    if classroom is None or not classroom.share_progress:
        return None
    from labkit.classroom import client

    sent, waiting = client.share(classroom, k.state_dir, client.report(classroom, lab.id, {r.id: r.ok for r in results}))
    if waiting:
        return f"the class server did not answer: {waiting} report(s) wait and go with the next `./kit lab.check`"
    return f"shared with the class ({sent} report(s) sent)"


def ladder(k: Kit) -> tuple[list[Any], Path, Path]:
    """Lab 06: the measurements on the control plane, saved as data and a chart in the state folder."""
    from labkit.labs import discovery
    from labkit.labs import ladder as ladder_mod

    nodes = context(k, discovery.find(discovery.discover(), "06"))
    record = nodes.first.file("/home/vagrant/lab06/ladder.txt")
    if not record.exists:
        raise KitError("there is no ~/lab06/ladder.txt on the control plane yet: run measure.sh there first (lab 06, step 1)")
    rungs = ladder_mod.parse(record.content_string)
    data, png = ladder_mod.save(rungs, k.state_dir)
    return rungs, data, png
