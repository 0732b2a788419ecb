"""`./kit test.molecule`: every role's Molecule scenario, with its real install path.

On this kind of host (root, no systemd as PID 1) it starts dockerd in a network
namespace of its own (scripts/docker-netns), builds the systemd image from Debian's
packages, fills the artifact cache (Debian packages from Debian's mirror, and CI's
stand-ins for the upstream release files), serves the cache on that namespace's
loopback, runs `molecule test` per scenario (create, converge, idempotence, verify,
destroy), and stops everything it started, by PID.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import yaml

from labkit.cache import supply
from labkit.cluster.kit import Kit
from labkit.dev import image
from labkit.errors import KitError
from labkit.paths import ROOT
from labkit.proc import run

SCENARIOS = ("node_base", "containerd", "cache_download", "kubeadm")
NETNS = "labkit-molecule"
PORT = 8790


def prepare_cache(k: Kit, say: Callable[[str], None]) -> None:
    """Build the upstream double if its overlay is missing, then fetch what the cache lacks
    from it, the way `./kit up` does on a connected machine (pins on first fetch)."""
    from labkit.cache import serve
    from labkit.dev import double

    resolved = k.resolve()
    if any(not p.exists() for p in resolved.overlays):
        say("building the upstream test double (stand-ins from Debian's packages)")
        double.build_for(k)
    with serve.serving(resolved.overlays[0].parent, "127.0.0.1", double.PORT):
        supply.fetch(k)


def run_suite(scenarios: tuple[str, ...] = SCENARIOS, say: Callable[[str], None] = print) -> dict[str, float]:
    if os.geteuid() != 0:
        raise KitError("the Molecule suite needs root here (dockerd in a network namespace, debootstrap)")
    times: dict[str, float] = {}
    k = Kit(config_path=ROOT / "tests/e2e/ci-cluster.yml", state_dir=ROOT / ".state/molecule", say=say)
    t = time.monotonic()
    prepare_cache(k, say)
    times["fill the cache"] = time.monotonic() - t
    resolved = k.resolve()
    server = None
    try:
        docker_host = run([str(ROOT / "scripts/docker-netns"), "start", NETNS], capture=True, what="start dockerd").stdout.strip()
        t = time.monotonic()
        tag = image.build(resolved.config.box.suite, resolved.config.box.mirror, docker_host, say=say)
        times["systemd image"] = time.monotonic() - t
        server = subprocess.Popen(
            ["ip", "netns", "exec", NETNS, sys.executable, "-m", "labkit.cache.serve", str(resolved.cache_dir), "--host", "127.0.0.1", "--port", str(PORT)],
            stdout=subprocess.DEVNULL,
        )
        kit_vars = {"kit": {"cache": {"url": f"http://127.0.0.1:{PORT}", "registry": f"127.0.0.1:{PORT}"}, **supply.kit_vars(k)}}
        vars_file = k.state_dir / "molecule-vars.yml"
        vars_file.parent.mkdir(parents=True, exist_ok=True)
        vars_file.write_text(yaml.safe_dump(kit_vars))
        env = {
            **os.environ,
            "DOCKER_HOST": docker_host,
            "LABKIT_MOLECULE_IMAGE": tag,
            "LABKIT_MOLECULE_VARS": str(vars_file),
            "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg"),
            "ANSIBLE_CACHE_PLUGIN": "memory",
        }
        env["PATH"] = f"{Path(sys.executable).parent}:{env['PATH']}"
        failed = []
        for scenario in scenarios:
            say(f"==> molecule test -s {scenario}")
            t = time.monotonic()
            code = subprocess.call([str(Path(sys.executable).parent / "molecule"), "test", "-s", scenario], cwd=ROOT, env=env)
            times[f"molecule test -s {scenario}"] = time.monotonic() - t
            if code != 0:
                failed.append(scenario)
        if failed:
            raise KitError(f"molecule failed for: {', '.join(failed)} (output above)")
    finally:
        if server is not None:
            server.send_signal(signal.SIGTERM)
            server.wait(timeout=30)
        run([str(ROOT / "scripts/docker-netns"), "stop", NETNS], check=False, capture=True)
    return times
