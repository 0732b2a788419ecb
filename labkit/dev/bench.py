"""`./kit bench`: figures for provisioning speed on the running cluster (prints, asserts nothing).

It reads the cluster's first provisioning (`first-run.json`, written by the first
`./kit up`), then re-runs the playbooks with nothing to change, side by side on the same
VMs: with all of the kit's Ansible tuning switched off (no Mitogen, no pipelining, no SSH
connection reuse, facts gathered for every play, no fact cache); with only Mitogen
switched off (ansible.cfg's tuning); and as configured (Mitogen's strategy on top of
ansible.cfg). The latest no-change run (a second `./kit up`) counts as the tuned re-run
when there is one. It prints the time of each run, the re-run's share of the first
(goal: at most 20 %), each baseline against the tuned run as a ratio, and the time per role.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

from labkit.cluster import lifecycle
from labkit.cluster.kit import Kit
from labkit.errors import KitError

TUNED = "re-run, tuned"
ALL_OFF = "re-run, tuning off"
NO_MITOGEN_RUN = "re-run, Mitogen off"
SHORT = {ALL_OFF: "all off", NO_MITOGEN_RUN: "no Mitogen", TUNED: "tuned"}
# Mitogen's strategy undone (runner.mitogen_env), then also the tuning in ansible.cfg.
NO_MITOGEN = {"ANSIBLE_STRATEGY": "linear"}
UNTUNED = {
    **NO_MITOGEN,
    "ANSIBLE_PIPELINING": "False",
    "ANSIBLE_SSH_ARGS": "-o ControlMaster=no",
    "ANSIBLE_GATHERING": "implicit",
    "ANSIBLE_CACHE_PLUGIN": "memory",
}


def _provision_seconds(summary: dict[str, Any]) -> float:
    return float(next(p["seconds"] for p in summary["phases"] if p["name"].startswith("provision")))


def _boot_seconds(summary: dict[str, Any]) -> float:
    return float(next((p["seconds"] for p in summary["phases"] if p["name"].startswith("boot")), 0.0))


def fresh(k: Kit, say: Callable[[str], None] = print) -> list[str]:
    """Two new clusters from the warm cache, one after the other on the same host: the
    first with Mitogen off (ansible.cfg's tuning only: the kit's provisioning before the
    speed work, the role-level probes aside), then as configured. The cluster left
    running is the tuned one, whose first provisioning the re-runs are compared with."""
    quiet: Callable[[str], None] = lambda _line: None  # noqa: E731 - the figures are the output
    firsts = {}
    for name, env in (("Mitogen off", NO_MITOGEN), ("tuned", {})):
        say(f"  a new cluster, {name}: destroy, then `up` (minutes under emulation)")
        lifecycle.destroy(Kit(k.root, k.config_path, k.state_dir, say=quiet))
        firsts[name] = lifecycle.up(Kit(k.root, k.config_path, k.state_dir, say=quiet), skip_doctor=True, env=env)
    return report_fresh(firsts["Mitogen off"], firsts["tuned"])


def report_fresh(off: dict[str, Any], tuned: dict[str, Any]) -> list[str]:
    a, b = _provision_seconds(off), _provision_seconds(tuned)
    lines = ["first provisioning of a new cluster (same host, same box, same warm cache):"]
    lines.append(f"  {'Mitogen off (the baseline)':<32} {a:8.1f} s   (boot {_boot_seconds(off):.1f} s, changed tasks: {off['changed']})")
    lines.append(f"  {'tuned':<32} {b:8.1f} s  = {b / a:5.0%} of the baseline   (boot {_boot_seconds(tuned):.1f} s, changed tasks: {tuned['changed']})")
    roles = sorted(set(off.get("roles", {})) | set(tuned.get("roles", {})))
    lines.append("  time per role (s):   Mitogen off         tuned")
    for role in roles:
        x, y = off.get("roles", {}).get(role), tuned.get("roles", {}).get(role)
        lines.append(f"    {role:<20}" + "".join(f"{c:>14.1f}" if c is not None else f"{'-':>14}" for c in (x, y)))
    return lines


def run(k: Kit, say: Callable[[str], None] = print, tags: str | None = None, new_clusters: bool = False) -> dict[str, object]:
    """Print the figures; with ``tags``, the re-run with all tuning off covers only those
    roles (it takes over ten minutes in full under emulation); the Mitogen-off re-run is
    whole, beside the tuned one (the latest no-change run, when there is one). With
    ``new_clusters``, first two new clusters are provisioned (`fresh`), Mitogen off and
    tuned, and Mitogen's share shows there instead of in a Mitogen-off re-run."""
    fresh_lines = fresh(k, say) if new_clusters else []
    if not k.first_run_path.exists():
        raise KitError("no first provisioning recorded for this cluster: run `./kit up` on a new cluster first")
    first = json.loads(k.first_run_path.read_text())
    first_site = _provision_seconds(first)
    results: dict[str, dict[str, object]] = {}
    quiet: Callable[[str], None] = lambda _line: None  # noqa: E731 - the figures are the output
    last = json.loads(k.last_run_path.read_text()) if k.last_run_path.exists() else None
    reuse = last is not None and last.get("finished") != first.get("finished") and last["changed"] == 0
    runs = [(ALL_OFF, UNTUNED, tags)] + ([] if new_clusters else [(NO_MITOGEN_RUN, NO_MITOGEN, None)]) + ([] if reuse else [(TUNED, {}, None)])
    for name, env, only in runs:
        start = time.monotonic()
        summary = lifecycle.provision(Kit(k.root, k.config_path, k.state_dir, say=quiet), env=env, tags=only)
        results[name] = {"seconds": time.monotonic() - start, "changed": summary["changed"], "roles": summary["roles"], "tasks": summary.get("tasks", [])}
    if reuse and last is not None:
        # The latest no-change run (e.g. the second `./kit up`) is the tuned re-run.
        tuned = _provision_seconds(last)
        results[TUNED] = {"seconds": tuned, "changed": 0, "roles": last.get("roles", {}), "tasks": last.get("tasks", [])}
    for line in [*fresh_lines, *report(first, results, tags)]:
        say(line)
    return {"first": first_site, **results}


def report(first: dict[str, Any], results: dict[str, dict[str, Any]], tags: str | None) -> list[str]:
    """The benchmark's lines: each run's time against the first, and the time per role."""
    first_site = _provision_seconds(first)
    first_roles: dict[str, float] = first.get("roles", {})
    lines = ["provisioning benchmark (playbooks/site.yml on the running cluster" + (f"; the all-off re-run limited to --tags {tags}" if tags else "") + "):"]
    lines.append(f"  {'first provisioning':<32} {first_site:8.1f} s")
    tuned_roles: dict[str, float] = results.get(TUNED, {}).get("roles", {})
    for name, r in results.items():
        secs = float(r["seconds"])
        if tags and name == ALL_OFF:
            # Only the tagged roles ran untuned: compare them with the same roles tuned.
            tagged = [t.strip() for t in tags.split(",") if t.strip()]
            off = sum(r["roles"].get(t, 0.0) for t in tagged)
            on = sum(tuned_roles.get(t, 0.0) for t in tagged)
            versus = f"  vs {on:.1f} s tuned: {off / on:.1f}x the tuned time" if on else ""
            lines.append(f"  {name + ' (' + tags + ')':<32} {off:8.1f} s{versus}   (changed tasks: {r['changed']})")
            continue
        tuned = float(results.get(TUNED, {}).get("seconds", 0.0))
        versus = f", {secs / tuned:4.1f}x the tuned re-run" if tuned and name != TUNED else ""
        lines.append(f"  {name:<32} {secs:8.1f} s  = {secs / first_site:5.0%} of the first{versus}   (changed tasks: {r['changed']})")
    names = list(results)
    lines.append("  time per role (s):      first" + "".join(f"{SHORT.get(n, n):>14}" for n in names))
    for role in sorted(set(first_roles) | {role for r in results.values() for role in r["roles"]}):
        cells = [first_roles.get(role), *(results[n]["roles"].get(role) for n in names)]
        lines.append(f"    {role:<20}" + "".join(f"{c:>14.1f}" if c is not None else f"{'-':>14}" for c in cells))
    slowest = results.get(TUNED, {}).get("tasks") or []
    if slowest:
        lines.append("  slowest tasks of the tuned re-run (s, profile_tasks):")
        lines += [f"    {secs:6.2f}  {task}" for task, secs in slowest[:6]]
    return lines
