"""Benchmark: a class of students filling their caches from the instructor's server at
once, side by side with a kept peer in the same run, on loopback.

The instructor's cache is a set of release-sized files (``sizes``, in MiB) with their
pins. Each simulated student is its own process running the kit's own fetch (the code a
student's `./kit up` runs in class: ``Mirrors.peer``, three downloads at a time, every
file verified against its pin), into a cache of its own. The peer is nginx (Debian's
``nginx-light``), serving the same folder and checking the same token; then the kit's
class server. Printed per server: wall time for the whole class, throughput, the server's
peak memory (VmHWM, the master and its workers for nginx) and how many files arrived
corrupt or missing (verified by ``cache.store.status``). Figures, never assertions.
"""

from __future__ import annotations

import hashlib
import multiprocessing
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from labkit.cache import fetch, store
from labkit.cache.lock import Lock, Pin
from labkit.cache.manifest import Item
from labkit.cache.trust import Mirrors
from labkit.dev.servebench import Figures, _peak_rss_mib, _port
from labkit.errors import KitError
from labkit.proc import require

PEER = "nginx"
TOKEN = "classbench-token-0123456789"  # noqa: S105 - the benchmark's own class


def _cache(root: Path, sizes: Sequence[int]) -> list[Item]:
    """The instructor's cache: one file per size, and the items that pin them."""
    items = []
    for n, mib in enumerate(sizes):
        digest = hashlib.sha256()
        url = f"https://upstream.test/release-{n}.tar.gz"
        item = Item(f"release-{n}", "1.0", "amd64", "file", url, None, False)
        target = root / item.relpath()
        target.parent.mkdir(parents=True, exist_ok=True)
        with target.open("wb") as fh:
            for _ in range(mib):
                chunk = os.urandom(1 << 20)
                digest.update(chunk)
                fh.write(chunk)
        sha = digest.hexdigest()
        items.append(Item(item.name, "1.0", "amd64", "file", url, sha, False, pin=Pin(sha, "download", url)))
    return items


def _student(args: tuple[Path, str, list[Item]]) -> tuple[int, str]:
    """One student's kit filling its cache from the class server: the files not verified,
    and the first error."""
    cache, url, items = args
    report = fetch.fetch(cache, items, jobs=3, mirrors=Mirrors(peer=url, peer_token=TOKEN), lock=Lock(cache))
    return sum(state != "present" for _, state in store.status(cache, items)), (report.errors or [""])[0]


def _tree_rss_mib(pid: int) -> float:
    """Peak memory of a process and its children (nginx's master and workers)."""
    total = _peak_rss_mib(pid)
    for task in Path(f"/proc/{pid}/task").glob("*/children"):
        for child in task.read_text().split():
            total += _peak_rss_mib(int(child))
    return total


def _nginx_conf(root: Path, port: int) -> Path:
    conf = root / "nginx.conf"
    conf.write_text(
        f"daemon off;\nworker_processes 1;\npid {root}/nginx.pid;\nerror_log {root}/error.log error;\n"
        "events { worker_connections 1024; }\n"
        f"http {{\n  access_log off;\n  sendfile on;\n  client_body_temp_path {root}/body;\n  proxy_temp_path {root}/proxy;\n"
        f"  fastcgi_temp_path {root}/fcgi;\n  uwsgi_temp_path {root}/uwsgi;\n  scgi_temp_path {root}/scgi;\n"
        f"  server {{\n    listen 127.0.0.1:{port};\n    root {root / 'cache'};\n"
        f'    if ($http_authorization != "Bearer {TOKEN}") {{ return 401; }}\n'
        "    location / { }\n  }\n}\n"
    )
    return conf


def _measure(name: str, argv: list[str], url: str, root: Path, items: list[Item], students: int) -> Figures:
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        _wait_token(url, proc, name)
        caches = [root / f"student-{name.split()[0].strip(':')}-{n}" for n in range(students)]
        start = time.monotonic()
        with multiprocessing.get_context("fork").Pool(students) as pool:
            outcomes = pool.map(_student, [(c, url, items) for c in caches])
        bad = sum(n for n, _ in outcomes)
        first = next((e for _, e in outcomes if e), "")
        if first:
            raise KitError(f"{name}: a student's fetch failed, so its figures mean nothing: {first}")
        seconds = time.monotonic() - start
        total = students * sum((root / "cache" / i.relpath()).stat().st_size for i in items) / (1 << 20)
        return Figures(name, seconds, total / seconds, _tree_rss_mib(proc.pid), students * len(items) - bad)  # ok: files verified
    finally:
        os.killpg(proc.pid, signal.SIGTERM)  # the server and, for nginx, its workers: started here, in their own session
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=20)


def _wait_token(url: str, proc: subprocess.Popen[bytes], what: str) -> None:
    """Wait until the server answers a request that carries the class token (any status
    but 401: nginx has no page at /, the class server has)."""
    import urllib.error
    import urllib.request

    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise KitError(f"{what} exited with {proc.returncode} before it answered")
        try:
            with urllib.request.urlopen(urllib.request.Request(url + "/", headers={"Authorization": f"Bearer {TOKEN}"}), timeout=2):  # noqa: S310 - loopback
                return
        except urllib.error.HTTPError as exc:
            if exc.code != 401:
                return
            raise KitError(f"{what} refused the benchmark's token") from None
        except (urllib.error.URLError, OSError):
            time.sleep(0.2)
    raise KitError(f"{what} did not answer on {url} within 30 s")


def run(*, students: int = 30, sizes: Sequence[int] = (24, 12, 6, 2), say: Callable[[str], None] = print) -> list[Figures]:
    if students < 1 or not sizes or min(sizes) < 1:
        raise KitError("classroom.bench needs at least one student and file sizes of 1 MiB or more")
    peer = require(PEER, "The peer is nginx (Debian: apt install nginx-light).")
    with tempfile.TemporaryDirectory(prefix="labkit-classbench-") as tmp:
        root = Path(tmp)
        root.chmod(0o755)  # nginx's worker runs as another user
        say(f"writing the instructor's cache: {len(sizes)} files, {sum(sizes)} MiB")
        items = _cache(root / "cache", sizes)
        p_peer, p_ours = _port(), _port()
        ours = [sys.executable, "-m", "labkit.classroom.server", str(root / "cache"), "--port", str(p_ours), "--token", TOKEN, "--db", str(root / "db")]
        results = []
        for name, argv, port in (
            (f"peer: nginx ({PEER})", [peer, "-c", str(_nginx_conf(root, p_peer)), "-p", str(root)], p_peer),
            ("labkit class server", ours, p_ours),
        ):
            say(f"{name}: {students} students fill their caches at once (3 downloads each)")
            results.append(_measure(name, argv, f"http://127.0.0.1:{port}", root, items, students))
    return results


def report(results: list[Figures], students: int, sizes: Sequence[int]) -> list[str]:
    peer, ours = results[0], results[1]
    lines = [f"{students} students × {sum(sizes)} MiB ({len(sizes)} files), loopback, every file verified against its pin:"]
    for f in results:
        lines.append(f"  {f.name:<34} {f.seconds:7.1f} s  {f.mib_per_s:8.0f} MiB/s  peak RSS {f.peak_rss_mib:6.0f} MiB  corrupt or missing: {students * len(sizes) - f.ok}")
    lines.append(f"  the class server: {ours.mib_per_s / peer.mib_per_s:.2f}× nginx's throughput at {ours.peak_rss_mib / max(peer.peak_rss_mib, 0.1):.2f}× its memory")
    return lines
