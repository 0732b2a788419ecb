"""A student's side of the classroom: join (one command writes the `classroom:` block of
sandbox.local.yml), fill the cache from the instructor's server, share `lab.check`
results.

What is shared is the report of ``store.Report`` (the student's name, this machine's host
name, the lab, each check's ✓/✗, when the checks ran) and nothing else. Reports that
cannot be sent (the room's Wi-Fi dropped, the server restarted) wait in the state folder
(``OUTBOX``) and go, oldest first, with the next one that can.
"""

from __future__ import annotations

import json
import re
import socket
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from labkit.cache import lock as cache_lock
from labkit.cache.trust import Mirrors
from labkit.cluster.schema import Classroom
from labkit.errors import KitError
from labkit.files import atomic_write

OUTBOX = "classroom-outbox.jsonl"
TIMEOUT = 10


def _request(url: str, token: str, data: bytes | None = None, timeout: float = TIMEOUT) -> bytes:
    headers = {"Authorization": f"Bearer {token}", **({"Content-Type": "application/json"} if data is not None else {})}
    try:
        with urllib.request.urlopen(urllib.request.Request(url, data=data, headers=headers), timeout=timeout) as resp:  # noqa: S310 - the class's URL
            return bytes(resp.read(1 << 20))
    except urllib.error.HTTPError as exc:
        if exc.code == 401:
            raise KitError(f"{url}: the class server refused the token: ask the instructor for it (`./kit classroom.serve` prints it)") from None
        raise KitError(f"{url} answered HTTP {exc.code}: {exc.read(300).decode(errors='replace').strip()}") from None
    except (urllib.error.URLError, TimeoutError, OSError, ValueError) as exc:
        raise KitError(f"cannot reach the class server at {url} ({getattr(exc, 'reason', exc)}): is it on this network, and is `./kit classroom.serve` running?") from None


def check_server(url: str, token: str) -> int:
    """How many students the class server shows; KitError when it cannot be reached or
    refuses the token."""
    try:
        rows = json.loads(_request(f"{url.rstrip('/')}/classroom/rows", token))
    except ValueError:
        raise KitError(f"{url} does not answer as a labkit class server") from None
    if not isinstance(rows, list):
        raise KitError(f"{url} does not answer as a labkit class server")
    return len(rows)


# ------------------------------------------------------------------ sandbox.local.yml
BLOCK = re.compile(r"^classroom:.*?(?=^\S|\Z)", re.MULTILINE | re.DOTALL)


def write_block(override: Path, classroom: Classroom | None) -> None:
    """Put (or, with None, remove) the `classroom:` block of the override file, leaving the
    rest of it (and its comments) as it is."""
    text = override.read_text() if override.exists() else ""
    text = BLOCK.sub("", text).rstrip("\n")
    if classroom is not None:
        lines = [
            "classroom:  # written by `./kit classroom.join`; `./kit classroom.leave` removes it",
            f"  url: {json.dumps(classroom.url)}",
            f"  token: {json.dumps(classroom.token)}",
            f"  student: {json.dumps(classroom.student)}",
            f"  share_progress: {'true' if classroom.share_progress else 'false'}",
        ]
        text = (text + "\n\n" if text else "") + "\n".join(lines)
    atomic_write(override, text + "\n" if text else "")


# ------------------------------------------------------------------ the cache
def mirrors(classroom: Classroom) -> Mirrors:
    """Where the cache is filled from in class: everything from the class server."""
    return Mirrors(peer=classroom.url.rstrip("/"), peer_token=classroom.token)


def adopt_lock(classroom: Classroom, cache_dir: Path) -> int:
    """Take the class cache's pins (those the repository does not hold) into this cache's
    lock, with their sources; a pin that disagrees with ours is refused. Returns how many
    were new."""
    try:
        text = _request(f"{classroom.url.rstrip('/')}/{cache_lock.LOCK_NAME}", classroom.token).decode(errors="replace")
    except KitError as exc:
        if "HTTP 404" in str(exc):
            return 0  # the class's cache holds only what the repository pins
        raise
    theirs = cache_lock.parse(text, f"the class server's lock ({classroom.url})")
    return cache_lock.Lock(cache_dir).adopt(theirs)


# ------------------------------------------------------------------ progress
def report(classroom: Classroom, lab: str, checks: Mapping[str, bool], at: float | None = None) -> dict[str, Any]:
    return {"student": classroom.student, "host": socket.gethostname()[:64] or "host", "lab": lab, "checks": dict(checks), "at": time.time() if at is None else at}


def share(classroom: Classroom, state_dir: Path, new: Mapping[str, Any]) -> tuple[int, int]:
    """Queue ``new`` and send the queue, oldest first; (sent, still waiting). Never raises
    for the network: what is not sent waits for the next `lab.check`."""
    outbox = state_dir / OUTBOX
    waiting = [json.loads(line) for line in (outbox.read_text().splitlines() if outbox.exists() else []) if line.strip()]
    waiting.append(dict(new))
    sent = 0
    for i, item in enumerate(waiting):
        try:
            _request(f"{classroom.url.rstrip('/')}/classroom/progress", classroom.token, json.dumps(item).encode())
        except KitError as exc:
            if "HTTP 422" in str(exc) or "HTTP 413" in str(exc):
                sent += 1  # refused as malformed: sending it again would not help
                continue
            waiting = waiting[i:]
            break
        sent += 1
    else:
        waiting = []
    if waiting or outbox.exists():
        atomic_write(outbox, "".join(json.dumps(item) + "\n" for item in waiting))
    return sent, len(waiting)
