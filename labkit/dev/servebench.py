"""Benchmark: the cache server's /v2/ endpoint side by side with a kept peer, in one run.

The peer is CNCF Distribution (Debian's ``docker-registry``), run by this benchmark with
its own configuration on loopback and stopped by its PID. Both serve the same blob (the
same file, hard-linked into each one's storage layout); ``clients`` concurrent pulls of
it (``curl``, so the client is never the bottleneck) run against one server, then the
other. Printed per server: wall time, throughput and peak memory (VmHWM of the server
process), and our figures as ratios of the peer's. Figures, never assertions.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from labkit.errors import KitError
from labkit.proc import require

PEER = "docker-registry"


@dataclass
class Figures:
    name: str
    seconds: float
    mib_per_s: float
    peak_rss_mib: float
    ok: int


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _blob(folder: Path, mib: int) -> tuple[Path, str]:
    path = folder / "blob"
    digest = hashlib.sha256()
    with path.open("wb") as fh:
        for _ in range(mib):
            chunk = os.urandom(1 << 20)
            digest.update(chunk)
            fh.write(chunk)
    return path, digest.hexdigest()


def _peak_rss_mib(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def _wait(url: str, proc: subprocess.Popen[bytes], what: str) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise KitError(f"{what} exited with {proc.returncode} before it answered")
        try:
            with urllib.request.urlopen(url, timeout=2):  # noqa: S310 - loopback
                return
        except (urllib.error.URLError, OSError):
            time.sleep(0.2)
    raise KitError(f"{what} did not answer on {url} within 30 s")


def _pull_all(url: str, clients: int, size: int) -> tuple[float, int]:
    start = time.monotonic()
    procs = [subprocess.Popen(["curl", "-sf", "-o", "/dev/null", "-w", "%{size_download}", url], stdout=subprocess.PIPE, text=True) for _ in range(clients)]
    ok = 0
    for p in procs:
        out, _ = p.communicate(timeout=1800)
        ok += p.returncode == 0 and out.strip() == str(size)
    return time.monotonic() - start, ok


def _measure(name: str, argv: list[str], url: str, blob_url: str, clients: int, size: int) -> Figures:
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        _wait(url, proc, name)
        seconds, ok = _pull_all(blob_url, clients, size)
        return Figures(name, seconds, clients * size / (1 << 20) / seconds, _peak_rss_mib(proc.pid), ok)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=20)


def run(*, mib: int = 200, clients: int = 50, say: Callable[[str], None] = print) -> list[Figures]:
    require("curl", "The benchmark pulls with curl (Debian: apt install curl).")
    peer = require(PEER, "The peer is CNCF Distribution (Debian: apt install docker-registry).")
    with tempfile.TemporaryDirectory(prefix="labkit-servebench-") as tmp:
        root = Path(tmp)
        say(f"writing a {mib} MiB blob")
        blob, hexdigest = _blob(root, mib)
        size = blob.stat().st_size
        ours = root / "ours" / "oci/blobs/sha256"
        ours.mkdir(parents=True)
        os.link(blob, ours / hexdigest)
        storage = root / "peer"
        data = storage / "docker/registry/v2/blobs/sha256" / hexdigest[:2] / hexdigest / "data"
        data.parent.mkdir(parents=True)
        os.link(blob, data)
        link = storage / "docker/registry/v2/repositories/bench/blob/_layers/sha256" / hexdigest / "link"
        link.parent.mkdir(parents=True)
        link.write_text(f"sha256:{hexdigest}")
        p_ours, p_peer = _port(), _port()
        config = root / "registry.yml"
        config.write_text(
            f"version: 0.1\nlog: {{level: error, accesslog: {{disabled: true}}}}\nstorage:\n  filesystem: {{rootdirectory: {storage}}}\n  delete: {{enabled: false}}\n"
            f"http: {{addr: '127.0.0.1:{p_peer}'}}\n"
        )
        path = f"/v2/bench/blob/blobs/sha256:{hexdigest}"
        results = []
        for name, argv, port in (
            (f"peer: CNCF Distribution ({PEER})", [peer, "serve", str(config)], p_peer),
            ("labkit cache server", [sys.executable, "-m", "labkit.cache.serve", str(root / "ours"), "--port", str(p_ours)], p_ours),
        ):
            say(f"{name}: {clients} concurrent pulls of the blob")
            results.append(_measure(name, argv, f"http://127.0.0.1:{port}/v2/", f"http://127.0.0.1:{port}{path}", clients, size))
        shutil.rmtree(root / "ours", ignore_errors=True)
    return results


def report(results: list[Figures], mib: int, clients: int) -> list[str]:
    peer, ours = results[0], results[1]
    lines = [f"cache server benchmark: {clients} concurrent pulls of one {mib} MiB blob on loopback, side by side in one run"]
    for r in results:
        lines.append(f"  {r.name:<40} {r.seconds:7.1f} s  {r.mib_per_s:8.0f} MiB/s  peak RSS {r.peak_rss_mib:6.0f} MiB  complete pulls {r.ok}/{clients}")
    lines.append(f"  ours / peer: throughput {ours.mib_per_s / peer.mib_per_s:.2f}x, peak RSS {ours.peak_rss_mib / max(peer.peak_rss_mib, 1):.2f}x")
    return lines
