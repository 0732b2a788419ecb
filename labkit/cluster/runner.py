"""Run playbooks with the kit's ansible.cfg, stream their output, read the recap.

The recap's ``changed`` counts are how idempotence is shown: a second `./kit up` must
report ``changed=0`` on every host.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from labkit.errors import KitError
from labkit.proc import require

_RECAP = re.compile(r"^(?P<host>\S+)\s+:\s+(?P<counts>(?:\w+=\d+\s*)+)$")


@dataclass(frozen=True)
class PlaybookRun:
    """What a playbook run left: the recap per host and the output lines."""

    recap: dict[str, HostRecap]
    lines: list[str]

    @property
    def role_times(self) -> dict[str, float]:
        return parse_role_times(self.lines)

    @property
    def task_times(self) -> list[tuple[str, float]]:
        return parse_task_times(self.lines)


@dataclass(frozen=True)
class HostRecap:
    ok: int = 0
    changed: int = 0
    unreachable: int = 0
    failed: int = 0
    skipped: int = 0
    rescued: int = 0
    ignored: int = 0


def _matches_after(lines: Sequence[str], header: str, pattern: re.Pattern[str]) -> Iterator[re.Match[str]]:
    """Matches of ``pattern`` on the (stripped) lines after the first line starting with ``header``."""
    started = False
    for line in lines:
        if line.startswith(header):
            started = True
        elif started and (m := pattern.match(line.strip())):
            yield m


def parse_recap(lines: Sequence[str]) -> dict[str, HostRecap]:
    """Parse the PLAY RECAP block of ansible-playbook's default output."""
    recap: dict[str, HostRecap] = {}
    for m in _matches_after(lines, "PLAY RECAP", _RECAP):
        counts = {k: int(v) for k, v in (p.split("=") for p in m.group("counts").split())}
        recap[m.group("host")] = HostRecap(**{k: v for k, v in counts.items() if k in HostRecap.__dataclass_fields__})
    return recap


_ROLE_TIME = re.compile(r"^(?P<role>[a-z][a-z0-9_]*)\s+-+\s+(?P<secs>\d+(?:\.\d+)?)s$")


def parse_role_times(lines: Sequence[str]) -> dict[str, float]:
    """Seconds per role from the ROLES RECAP of the ansible.posix.profile_roles callback."""
    return {m.group("role"): float(m.group("secs")) for m in _matches_after(lines, "ROLES RECAP", _ROLE_TIME) if m.group("role") != "total"}


_TASK_TIME = re.compile(r"^(?P<task>\S.*?)\s+-+\s+(?P<secs>\d+(?:\.\d+)?)s$")


def parse_task_times(lines: Sequence[str]) -> list[tuple[str, float]]:
    """The slowest tasks (``role : task``, seconds), slowest first, from the TASKS RECAP of
    the ansible.posix.profile_tasks callback (it lists its top 20); the block ends at the
    next recap."""
    found: list[tuple[str, float]] = []
    inside = False
    for line in lines:
        if line.startswith("TASKS RECAP"):
            inside, found = True, []
        elif inside and "RECAP" in line and line.rstrip().endswith("*"):
            inside = False
        elif inside and (m := _TASK_TIME.match(line.strip())):
            found.append((m.group("task"), float(m.group("secs"))))
    return found


def failures(lines: Sequence[str], most: int = 3) -> str:
    """The failed tasks of a run, each with its task line: what a quiet run must still show."""
    task = ""
    found: list[str] = []
    for line in lines:
        if line.startswith("TASK ["):
            task = line.rstrip(" *")
        elif line.startswith(("fatal: [", "failed: [")) and len(found) < most:
            found.append(f"  {task}\n    {line[:1500]}")
    return "\n".join(found)


def total_changed(recap: dict[str, HostRecap]) -> int:
    return sum(r.changed for r in recap.values())


def ansible_tool(name: str) -> str:
    """An Ansible command from the kit's own environment (beside this Python), else PATH."""
    beside = Path(sys.executable).parent / name
    if beside.exists():
        return str(beside)
    return require(name, "Re-run ./kit so it installs ansible into .venv.")


def mitogen_env() -> dict[str, str]:
    """Mitogen for Ansible's strategy: one Python interpreter kept on each node for the whole
    play, instead of a new one started for every task (what costs seconds per task under
    software emulation). On unless LABKIT_MITOGEN=0; the bench turns it off to compare."""
    if os.environ.get("LABKIT_MITOGEN", "1") == "0":
        return {}
    try:
        import ansible_mitogen
    except ImportError:  # requirements.txt pins it; a hand-made environment may lack it
        return {}
    return {"ANSIBLE_STRATEGY_PLUGINS": str(Path(ansible_mitogen.__file__).parent / "plugins" / "strategy"), "ANSIBLE_STRATEGY": "mitogen_linear"}


def ansible_env(root: Path, state_dir: Path | None = None) -> dict[str, str]:
    env = dict(os.environ)
    env.update(mitogen_env())
    env["ANSIBLE_CONFIG"] = str(root / "ansible.cfg")
    env["ANSIBLE_CACHE_PLUGIN_CONNECTION"] = str((state_dir or root / ".state") / "facts")
    # SSH connection masters of this cluster, in its state folder (closed after a snapshot restore).
    env["ANSIBLE_SSH_CONTROL_PATH_DIR"] = str((state_dir or root / ".state") / "cp")
    env.setdefault("ANSIBLE_FORCE_COLOR", "0")
    env["PYTHONUNBUFFERED"] = "1"
    return env


def playbook(
    root: Path,
    name: str,
    inventory: Path,
    *,
    tags: str | None = None,
    limit: str | None = None,
    extra: Sequence[str] = (),
    emit: Callable[[str], None] = print,
    env: dict[str, str] | None = None,
    state_dir: Path | None = None,
) -> PlaybookRun:
    """Run ``playbooks/NAME`` against ``inventory``; raise KitError naming failed hosts."""
    playbook_path = Path(name) if Path(name).is_absolute() else root / "playbooks" / name
    argv = [ansible_tool("ansible-playbook"), "-i", str(inventory), str(playbook_path)]
    if tags:
        argv += ["--tags", tags]
    if limit:
        argv += ["--limit", limit]
    argv += list(extra)
    lines: list[str] = []
    with subprocess.Popen(argv, cwd=root, env={**ansible_env(root, state_dir), **(env or {})}, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1) as proc:
        try:
            for line in proc.stdout or ():
                line = line.rstrip("\n")
                lines.append(line)
                emit(line)
            code = proc.wait()
        except KeyboardInterrupt:
            proc.wait()
            raise KitError(f"interrupted while running {playbook_path.name}; every task is idempotent: run the command again to finish") from None
    recap = parse_recap(lines)
    if code != 0:
        bad = sorted(h for h, r in recap.items() if r.failed or r.unreachable)
        hosts = f" on {', '.join(bad)}" if bad else ""
        raise KitError(f"{name} failed{hosts} (exit {code}):\n{failures(lines) or '  (no task failed: see the output above)'}\nFix it and run `./kit provision`.")
    return PlaybookRun(recap, lines)


def close_ssh_masters(state_dir: Path) -> int:
    """Close this cluster's persistent SSH connections (their peers may have been restored
    from a snapshot and no longer know them). Returns how many were closed."""
    closed = 0
    for sock in sorted((state_dir / "cp").glob("*")) if (state_dir / "cp").is_dir() else []:
        subprocess.run(["ssh", "-o", f"ControlPath={sock}", "-O", "exit", "labkit-master"], capture_output=True, timeout=30, check=False)
        closed += 1
    return closed
