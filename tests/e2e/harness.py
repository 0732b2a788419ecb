"""The VM suite's harness: run `./kit` for the CI cluster and record phase times.

A module of its own (not conftest.py) so the tests and the conftest share one TIMINGS.
"""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
TIMINGS: list[tuple[str, float | None]] = []


@dataclass
class Cluster:
    """Runs `./kit` commands for the CI cluster (inside the namespace when there is one)."""

    env: dict[str, str]
    netns: str | None
    state_dir: Path
    log: list[str] = field(default_factory=list)

    def prefix(self) -> list[str]:
        return ["ip", "netns", "exec", self.netns] if self.netns else []

    def kit(
        self,
        *args: str,
        timeout: float = 1800,
        check: bool = True,
        host_network: bool = False,
        interrupt_when: Callable[[str], bool] | None = None,
        interrupt_delay: float = 0,
        fault: Callable[[], None] | None = None,
    ) -> subprocess.CompletedProcess[str]:
        """Run `./kit ARGS` inside the namespace, or on the host's network (`host_network`:
        for steps that download from Debian's mirror, such as box.build). With
        ``interrupt_when``, ``interrupt_delay`` seconds after the first output line it
        accepts, SIGINT goes to the command's process group, as Ctrl-C in a terminal would
        (or, given ``fault``, that fault happens instead, e.g. a node's power cut)."""
        argv = [*([] if host_network else self.prefix()), sys.executable, "-m", "labkit", *args]
        print(f"\n$ {shlex.join(argv)}", flush=True)
        start = time.monotonic()
        # Stream the output (CI logs show progress) and keep it for the assertions.
        out: list[str] = []
        with subprocess.Popen(argv, cwd=ROOT, env=self.env, text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=interrupt_when is not None) as child:
            err_lines: list[str] = []
            reader = threading.Thread(target=lambda: err_lines.extend(child.stderr or ()), daemon=True)
            reader.start()
            # A hung VM step is killed at its (generous) limit rather than retried.
            timer = threading.Timer(timeout, child.kill)
            timer.start()
            for line in child.stdout or ():
                out.append(line)
                print(line, end="", flush=True)
                if interrupt_when is not None and interrupt_when(line):
                    interrupt_when = None

                    def ctrl_c(pid: int = child.pid) -> None:
                        print(f"\n[harness] Ctrl-C (SIGINT to the process group of {pid})", flush=True)
                        os.killpg(pid, signal.SIGINT)

                    threading.Timer(interrupt_delay, fault or ctrl_c).start()
            child.wait()
            timer.cancel()
            reader.join(timeout=10)
        if child.returncode < 0 and time.monotonic() - start >= timeout:
            pytest.fail(f"`kit {' '.join(args)}` did not finish within {timeout:.0f} s and was killed")
        proc = subprocess.CompletedProcess(argv, child.returncode, "".join(out), "".join(err_lines))
        print(proc.stderr, flush=True)
        print(f"[{time.monotonic() - start:.1f} s] exit {proc.returncode}", flush=True)
        if check and proc.returncode != 0:
            pytest.fail(f"`kit {' '.join(args)}` failed with exit {proc.returncode}:\n{proc.stderr[-3000:]}")
        return proc

    def wait_for_ssh(self, node: str, timeout: float) -> None:
        """Poll until NODE answers over SSH again (after a reboot), within ``timeout``."""
        deadline = time.monotonic() + timeout
        time.sleep(20)
        while time.monotonic() < deadline:
            argv = [*self.prefix(), sys.executable, "-m", "labkit", "ssh", node, "--command", "systemctl is-system-running --wait"]
            proc = subprocess.run(argv, cwd=ROOT, env=self.env, capture_output=True, text=True, timeout=300, check=False)
            if proc.stdout.strip() in ("running", "degraded"):
                return
            time.sleep(10)
        pytest.fail(f"{node} did not come back within {timeout:.0f} s")

    def virsh(self, *args: str) -> str:
        return subprocess.run(["virsh", "-c", "qemu:///system", *args], capture_output=True, text=True, check=True, timeout=60).stdout


def record(name: str, seconds: float | None) -> None:
    """Note a phase time (or, with ``None``, a line of its own such as a ratio)."""
    TIMINGS.append((name, seconds))


def walk_lab(cluster: Cluster, lab: str, timeout: float = 3600) -> list[tuple[int, float, str]]:
    """`./kit lab.walk LAB` on a just-started lab: the guide's sh blocks step by step, each
    step's checks failing before it and passing after it. Records the walk's time and each
    step's, asserts that every step of lab.yml ran, returns (step, seconds, title)."""
    import re

    import yaml

    start = time.monotonic()
    walked = cluster.kit("lab.walk", lab, timeout=timeout)
    record(f"lab {lab}: the guide walked as written", time.monotonic() - start)
    steps = [(int(n), float(secs), title) for n, secs, title in re.findall(r"^  step (\d+)\s+([\d.]+) s  (.*)$", walked.stdout, flags=re.MULTILINE)]
    assert len(steps) == len(yaml.safe_load(next((ROOT / "labs").glob(f"{lab}-*/lab.yml")).read_text())["steps"]), walked.stdout
    for number, secs, title in steps:
        record(f"lab {lab}: guide step {number} ({title})", secs)
    return steps
