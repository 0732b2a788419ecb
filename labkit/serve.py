"""Serve the artifact cache to the nodes over HTTP (read-only).

``/debs/`` is a flat apt repository (``deb [trusted=yes] URL/debs/ ./``; its Packages
index is generated from the .deb files themselves when the server starts), ``/files/``
the release files, in the layout of ``cache.Item.relpath()``.  `./kit up` and
`./kit provision` start it on the host's address on the private network for the
duration of the playbooks and stop it afterwards; ``python -m labkit.serve`` runs it
alone (Molecule, debugging).
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import http.server
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from labkit.debs import packages_index
from labkit.errors import KitError


class _Handler(http.server.SimpleHTTPRequestHandler):
    """Static files only; no directory listings, quiet log."""

    def list_directory(self, path: str) -> None:  # type: ignore[override]
        self.send_error(404, "no listings")

    def log_message(self, format: str, *args: object) -> None:
        pass


def prepare(cache_dir: Path) -> None:
    """Write the apt index of the .debs in the cache."""
    debs = cache_dir / "debs"
    debs.mkdir(parents=True, exist_ok=True)
    index = debs / "Packages"
    tmp = index.with_suffix(".tmp")
    tmp.write_text(packages_index(debs))
    tmp.replace(index)


@contextmanager
def serving(cache_dir: Path, host: str, port: int) -> Iterator[str]:
    """Serve ``cache_dir`` on host:port in a background thread; yield the base URL."""
    prepare(cache_dir)
    handler = functools.partial(_Handler, directory=str(cache_dir))
    try:
        httpd = http.server.ThreadingHTTPServer((host, port), handler)
    except OSError as exc:
        raise KitError(f"cannot serve the artifact cache on {host}:{port}: {exc.strerror}. Is another `./kit` running, or is {host} not on this host?") from exc
    thread = threading.Thread(target=httpd.serve_forever, name="labkit-cache", daemon=True)
    thread.start()
    try:
        yield f"http://{host}:{port}"
    finally:
        httpd.shutdown()
        httpd.server_close()


def main() -> None:
    parser = argparse.ArgumentParser(description="Serve the labkit artifact cache (read-only) until stopped.")
    parser.add_argument("cache_dir", type=Path)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8790)
    args = parser.parse_args()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with serving(args.cache_dir, args.host, args.port) as url:
        print(f"serving {args.cache_dir} at {url}", flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            stop.wait()


if __name__ == "__main__":
    main()
