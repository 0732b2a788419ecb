"""A thin wrapper over the `vagrant` CLI: machine-readable status, ssh-config, up/halt/destroy.

Output of long commands is streamed with Vagrant's own progress lines condensed, so a
user sees what happens without thousands of ``Progress: 3%`` lines.  Parsing functions
take text and are unit-tested on recorded output.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from labkit.errors import KitError
from labkit.proc import require

_PROGRESS = re.compile(r"(\x1b\[K)?Progress: (\d+)%")
_RUBY_FRAME = re.compile(r"^\s*/\S+\.rb:\d+:in ")


@dataclass(frozen=True)
class SshEndpoint:
    """How to reach one machine over SSH (from `vagrant ssh-config`)."""

    host: str
    port: int
    user: str
    identity_file: str


def parse_status(text: str) -> dict[str, str]:
    """`vagrant status --machine-readable` → {machine: state}."""
    states: dict[str, str] = {}
    for line in text.splitlines():
        parts = line.split(",")
        if len(parts) >= 4 and parts[2] == "state" and parts[1]:
            states[parts[1]] = parts[3]
    return states


def parse_ssh_config(text: str) -> dict[str, SshEndpoint]:
    """`vagrant ssh-config` (one ``Host`` block per machine) → {machine: endpoint}."""
    blocks: dict[str, dict[str, str]] = {}
    current: dict[str, str] | None = None
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        key, _, value = line.partition(" ")
        if key == "Host":
            current = blocks.setdefault(value.strip(), {})
        elif current is not None:
            current.setdefault(key, value.strip().strip('"'))
    out = {}
    for name, kv in blocks.items():
        if "HostName" not in kv:
            continue
        out[name] = SshEndpoint(kv["HostName"], int(kv.get("Port", "22")), kv.get("User", "vagrant"), kv.get("IdentityFile", ""))
    return out


def condense(lines: Sequence[str] | object, emit: Callable[[str], None]) -> None:
    """Echo Vagrant's output, replacing runs of ``Progress: N%`` with one line per 10 %
    and Ruby backtraces with one line (the error message itself is kept)."""
    last = -10
    frames = 0
    for raw in lines:  # type: ignore[attr-defined]
        for piece in str(raw).replace("\r", "\n").splitlines():
            if _RUBY_FRAME.match(piece):
                frames += 1
                continue
            if frames:
                emit(f"    ({frames} lines of Ruby backtrace hidden)")
                frames = 0
            m = _PROGRESS.search(piece)
            if m:
                pct = int(m.group(2))
                if pct >= last + 10 or pct == 100:
                    last = pct
                    emit(f"    progress {pct}%")
                continue
            last = -10 if "Progress" not in piece else last
            clean = piece.replace("\x1b[K", "")
            if clean.strip():
                emit(clean)
    if frames:
        emit(f"    ({frames} lines of Ruby backtrace hidden)")


class Vagrant:
    """Runs vagrant for one cluster (one Vagrantfile, one state folder)."""

    def __init__(self, root: Path, state_dir: Path, default_state_dir: Path):
        self.root = root
        self.state_dir = state_dir
        self.env = dict(os.environ)
        self.env["LABKIT_STATE_DIR"] = str(state_dir)
        # Vagrant's own machine folder stays `.vagrant` (so plain `vagrant ssh` works)
        # unless the kit runs on a second state folder (tests, CI).
        if state_dir.resolve() != default_state_dir.resolve():
            self.env["VAGRANT_DOTFILE_PATH"] = str(state_dir / "vagrant")

    def _argv(self, *args: str) -> list[str]:
        return [require("vagrant", "Install Vagrant (see `./kit doctor`)."), *args]

    def capture(self, *args: str, timeout: float = 300) -> str:
        try:
            proc = subprocess.run(self._argv(*args), cwd=self.root, env=self.env, capture_output=True, text=True, timeout=timeout, check=False)
        except subprocess.TimeoutExpired as exc:
            raise KitError(f"`vagrant {' '.join(args)}` did not answer within {timeout:.0f} s") from exc
        if proc.returncode != 0:
            tail = "\n".join((proc.stderr or proc.stdout).strip().splitlines()[-10:])
            raise KitError(f"`vagrant {' '.join(args)}` failed (exit {proc.returncode}):\n{tail}")
        return proc.stdout

    def stream(self, *args: str, emit: Callable[[str], None] = print, extra_env: Mapping[str, str] | None = None) -> None:
        """Run a long vagrant command, echoing condensed output; Ctrl-C stops it cleanly."""
        env = {**self.env, **(extra_env or {})}
        with subprocess.Popen(self._argv(*args), cwd=self.root, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1) as proc:
            try:
                condense(proc.stdout or (), emit)
                code = proc.wait()
            except KeyboardInterrupt:
                # Vagrant got the same SIGINT and is cleaning up: let it finish.
                proc.wait()
                raise KitError(f"interrupted during `vagrant {' '.join(args)}`; run the same command again to continue") from None
        if code != 0:
            raise KitError(f"`vagrant {' '.join(args)}` failed (exit {code}); the output above says why. Fix it and run the command again.")

    def status(self) -> dict[str, str]:
        return parse_status(self.capture("status", "--machine-readable"))

    def ssh_config(self, names: Sequence[str]) -> dict[str, SshEndpoint]:
        return parse_ssh_config(self.capture("ssh-config", *names))

    def box_names(self) -> set[str]:
        text = self.capture("box", "list", "--machine-readable")
        return {parts[3] for parts in (line.split(",") for line in text.splitlines()) if len(parts) >= 4 and parts[2] == "box-name"}

    def box_add(self, name: str, box_file: Path) -> None:
        # Run outside the project folder: `box add` needs no Vagrantfile.
        subprocess.run(self._argv("box", "add", "--force", "--name", name, str(box_file)), cwd=box_file.parent, env=self.env, check=True, stdout=sys.stdout, stderr=sys.stderr)

    def snapshot(self, action: str, name: str, machines: Sequence[str] = ()) -> None:
        """`vagrant snapshot save|restore|delete` NAME on ``machines`` (all when empty)."""
        for machine in machines or [""]:
            args = ["snapshot", action, *([machine] if machine else []), name]
            if action == "restore":
                args.insert(2, "--no-provision")
            self.stream(*args, emit=lambda line: None)

    def snapshot_names(self, machine: str) -> list[str]:
        text = self.capture("snapshot", "list", machine)
        return [line.strip() for line in text.splitlines() if line.strip() and not line.startswith("==>")]

    def exec_ssh(self, name: str, command: str | None = None) -> int:
        args = self._argv("ssh", name) + (["-c", command] if command else [])
        return subprocess.call(args, cwd=self.root, env=self.env)
