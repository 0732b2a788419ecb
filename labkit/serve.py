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
import json
import re
import signal
import threading
import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from labkit.debs import packages_index
from labkit.errors import KitError

_DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")
_MANIFEST_TYPES = ("application/vnd.oci.image.manifest.v1+json", "application/vnd.oci.image.index.v1+json")


class _Handler(http.server.SimpleHTTPRequestHandler):
    """Static files, plus a read-only OCI distribution endpoint under /v2/ (pulls only).

    Images live in ``oci/blobs/sha256/<hex>`` (content-addressed, so a digest-pinned
    reference resolves whatever the repository name) and ``oci/tags/<name>/<tag>``
    (a file holding the manifest's digest).
    """

    def do_GET(self) -> None:
        if self.path.startswith("/v2/"):
            self._registry(send_body=True)
        else:
            super().do_GET()

    def do_HEAD(self) -> None:
        if self.path.startswith("/v2/"):
            self._registry(send_body=False)
        else:
            super().do_HEAD()

    def _registry(self, send_body: bool) -> None:
        root = Path(self.directory) / "oci"
        url = urllib.parse.urlsplit(self.path)
        path = url.path
        # As a mirror, containerd asks for the repository without its registry and names
        # the registry in ?ns= (registry.k8s.io, labkit.local, ...).
        ns = urllib.parse.parse_qs(url.query).get("ns", [""])[0]
        if path in ("/v2/", "/v2"):
            self._send(200, b"{}", "application/json", send_body)
            return
        m = re.match(r"^/v2/(?P<name>.+)/(?P<kind>manifests|blobs)/(?P<ref>[^/]+)$", path)
        if m is None or ".." in m.group("name") or ".." in ns or "/" in ns:
            self._send(404, b'{"errors":[{"code":"NAME_UNKNOWN"}]}', "application/json", send_body)
            return
        ref = m.group("ref")
        if not _DIGEST.match(ref):
            candidates = [root / "tags" / ns / m.group("name") / ref] if ns else []
            candidates.append(root / "tags" / m.group("name") / ref)
            tag_file = next((c for c in candidates if c.is_file()), None)
            ref = tag_file.read_text().strip() if m.group("kind") == "manifests" and tag_file is not None else ""
        blob = root / "blobs" / "sha256" / ref.removeprefix("sha256:") if _DIGEST.match(ref) else None
        if blob is None or not blob.is_file():
            code = "MANIFEST_UNKNOWN" if m.group("kind") == "manifests" else "BLOB_UNKNOWN"
            self._send(404, f'{{"errors":[{{"code":"{code}"}}]}}'.encode(), "application/json", send_body)
            return
        body = blob.read_bytes()
        ctype = "application/octet-stream"
        if m.group("kind") == "manifests":
            ctype = json.loads(body).get("mediaType", _MANIFEST_TYPES[0])
        self._send(200, body, ctype, send_body, digest=ref)

    def _send(self, status: int, body: bytes, ctype: str, send_body: bool, digest: str | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Docker-Distribution-API-Version", "registry/2.0")
        if digest:
            self.send_header("Docker-Content-Digest", digest)
        self.end_headers()
        if send_body:
            self.wfile.write(body)

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
