"""Serve the artifact cache to the nodes over HTTP (read-only, bounded, only to the cluster).

``/debs/`` is a flat apt repository (``deb [trusted=yes] URL/debs/ ./``; its Packages
index is generated from the .deb files themselves when the server starts), ``/files/``
the release files, in the layout of ``cache.Item.relpath()``, and ``/v2/`` a read-only
OCI distribution endpoint (pulls only).  `./kit up` and `./kit provision` start it on the
host's address on the private network for the duration of the playbooks and stop it
afterwards; ``python -m labkit.cache.serve`` runs it alone (Molecule, CI's upstream double).

It is built on aiohttp (already installed with the Kubernetes client), which streams
files from disk with ``sendfile`` and HTTP Range support, so memory stays flat whatever
the blob size and however many nodes pull at once. Safety:

- only regular files inside the served folder are ever answered (no ``..``, no symlink
  that leads out, no directory listings);
- repository names, tags and digests are checked against the OCI distribution grammar
  before any path is built from them;
- only clients on the allowed networks (loopback and the cluster's) get an answer;
- at most ``max_active`` requests are served at once; the others wait their turn.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ipaddress
import json
import re
import signal
import threading
from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from aiohttp import web

from labkit.cache.debs import packages_index
from labkit.errors import KitError

# The OCI distribution spec's grammar (distribution-spec, "Pulling manifests").
NAME = re.compile(r"^[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*$")
TAG = re.compile(r"^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$")
DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")
REGISTRY = re.compile(r"^[a-z0-9]([a-z0-9.-]*[a-z0-9])?(:\d{1,5})?$")  # containerd's ?ns=
MANIFEST_TYPES = ("application/vnd.oci.image.manifest.v1+json", "application/vnd.oci.image.index.v1+json")
MAX_MANIFEST = 4 << 20
LOOPBACK = (ipaddress.ip_network("127.0.0.0/8"), ipaddress.ip_network("::1/128"))
API_HEADERS = {"Docker-Distribution-API-Version": "registry/2.0"}


def _error(status: int, code: str) -> web.Response:
    return web.json_response({"errors": [{"code": code}]}, status=status, headers=API_HEADERS)


class Cache:
    """The request handlers over one served folder."""

    def __init__(self, root: Path) -> None:
        self.root = root.resolve()

    def inside(self, relative: str) -> Path | None:
        """The regular file ``relative`` names inside the folder, or None (never outside it)."""
        parts = [p for p in relative.split("/") if p not in ("", ".")]  # apt asks for /debs/./Packages
        if "\x00" in relative or ".." in parts or not parts:
            return None
        path = self.root.joinpath(*parts)
        try:
            real = path.resolve(strict=True)
        except (OSError, RuntimeError):
            return None
        if not real.is_relative_to(self.root) or not real.is_file():
            return None
        return real

    async def files(self, request: web.Request) -> web.StreamResponse:
        path = self.inside(request.match_info["path"])
        if path is None:
            raise web.HTTPNotFound()
        return web.FileResponse(path, chunk_size=1 << 18)

    async def v2(self, request: web.Request) -> web.StreamResponse:
        return web.json_response({}, headers=API_HEADERS)

    async def registry(self, request: web.Request) -> web.StreamResponse:
        name, kind, ref = request.match_info["name"], request.match_info["kind"], request.match_info["ref"]
        # As a mirror, containerd asks for the repository without its registry and names
        # the registry in ?ns= (registry.k8s.io, labkit.local, ...).
        ns = request.query.get("ns", "")
        if not NAME.match(name) or (ns and not REGISTRY.match(ns)):
            return _error(404, "NAME_INVALID" if not NAME.match(name) else "NAME_UNKNOWN")
        unknown = "MANIFEST_UNKNOWN" if kind == "manifests" else "BLOB_UNKNOWN"
        digest = ref
        if not DIGEST.match(ref):
            if kind != "manifests" or not TAG.match(ref):
                return _error(404, unknown)
            candidates = ([f"oci/tags/{ns}/{name}/{ref}"] if ns else []) + [f"oci/tags/{name}/{ref}"]
            tag = next((p for c in candidates if (p := self.inside(c)) is not None), None)
            digest = tag.read_text(errors="replace").strip()[:80] if tag is not None else ""
            if not DIGEST.match(digest):
                return _error(404, unknown)
        blob = self.inside(f"oci/blobs/sha256/{digest.removeprefix('sha256:')}")
        if blob is None:
            return _error(404, unknown)
        headers = {**API_HEADERS, "Docker-Content-Digest": digest}
        if kind == "blobs":
            return web.FileResponse(blob, chunk_size=1 << 18, headers={**headers, "Content-Type": "application/octet-stream"})
        if blob.stat().st_size > MAX_MANIFEST:
            return _error(404, unknown)
        body = blob.read_bytes()
        try:
            media = json.loads(body).get("mediaType") or MANIFEST_TYPES[0]
        except (ValueError, AttributeError):
            return _error(404, unknown)
        return web.Response(body=body if request.method == "GET" else None, headers={**headers, "Content-Type": media, "Content-Length": str(len(body))})


def client_guard(allow: Sequence[ipaddress.IPv4Network | ipaddress.IPv6Network], max_active: int) -> Callable[..., Awaitable[web.StreamResponse]]:
    gate = asyncio.Semaphore(max_active)

    @web.middleware
    async def guard(request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]) -> web.StreamResponse:
        try:
            client = ipaddress.ip_address((request.remote or "").split("%")[0])
        except ValueError:
            raise web.HTTPForbidden() from None
        if not any(client in net for net in allow):
            raise web.HTTPForbidden()
        async with gate:
            return await handler(request)

    return guard


def add_cache_routes(application: web.Application, cache_dir: Path, *, exclude: Sequence[str] = ()) -> None:
    """The cache's routes (files, apt, `/v2/`) on ``application``: `cache.serve`'s and the
    classroom server's one implementation. Paths under the ``exclude`` prefixes are left
    to the application's own routes."""
    handlers = Cache(cache_dir)
    registry = r"/v2/{name:[^?]+}/{kind:manifests|blobs}/{ref:[^/]+}"
    application.router.add_get("/v2/", handlers.v2)  # add_get answers HEAD too
    application.router.add_get(registry, handlers.registry)
    skip = "".join(f"(?!{re.escape(prefix.lstrip('/'))})" for prefix in ("v2/", *exclude))
    application.router.add_get("/{path:" + skip + ".+}", handlers.files)


def app(cache_dir: Path, allow: Sequence[ipaddress.IPv4Network | ipaddress.IPv6Network] = LOOPBACK, max_active: int = 32) -> web.Application:
    application = web.Application(middlewares=[client_guard(allow, max_active)])
    add_cache_routes(application, cache_dir)
    return application


def prepare(cache_dir: Path) -> None:
    """Write the apt index of the .debs in the cache."""
    debs = cache_dir / "debs"
    debs.mkdir(parents=True, exist_ok=True)
    index = debs / "Packages"
    tmp = index.with_suffix(".tmp")
    tmp.write_text(packages_index(debs))
    tmp.replace(index)


def default_allow(host: str) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    """Loopback, and the /24 of the address served on (the cluster's private network)."""
    nets: list[ipaddress.IPv4Network | ipaddress.IPv6Network] = list(LOOPBACK)
    with contextlib.suppress(ValueError):
        address = ipaddress.ip_address(host)
        if not address.is_loopback and not address.is_unspecified:
            nets.append(ipaddress.ip_network(f"{host}/24", strict=False))
    return nets


@contextmanager
def serving(
    cache_dir: Path,
    host: str,
    port: int,
    *,
    allow: Sequence[ipaddress.IPv4Network | ipaddress.IPv6Network] | None = None,
    max_active: int = 32,
    application: web.Application | None = None,
    what: str = "the artifact cache",
    is_cache: bool = True,
) -> Iterator[str]:
    """Serve ``cache_dir`` on host:port from a background thread (or ``application``, an
    app that serves it among other things, or a folder that is no cache: ``is_cache``
    False); yield the base URL."""
    if is_cache:
        prepare(cache_dir)
    loop = asyncio.new_event_loop()
    runner = web.AppRunner(application or app(cache_dir, allow or default_allow(host), max_active), access_log=None, handle_signals=False)
    started = threading.Event()
    failure: list[BaseException] = []

    def run() -> None:
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(runner.setup())
            loop.run_until_complete(web.TCPSite(runner, host, port, backlog=128, reuse_address=True).start())
        except OSError as exc:
            failure.append(exc)
            started.set()
            return
        started.set()
        loop.run_forever()

    thread = threading.Thread(target=run, name="labkit-cache", daemon=True)
    thread.start()
    started.wait(30)
    if failure:
        thread.join(timeout=30)  # it returned without running the loop
        loop.run_until_complete(runner.cleanup())
        loop.close()
        exc = failure[0]
        raise KitError(f"cannot serve {what} on {host}:{port}: {getattr(exc, 'strerror', exc)}. Is another `./kit` running, or is {host} not on this host?")
    try:
        yield f"http://{host}:{port}"
    finally:
        asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(timeout=30)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=30)
        loop.close()


def run_until_stopped(server: contextlib.AbstractContextManager[str], announce: Callable[[str], None]) -> None:
    """Run ``server`` (a ``serving()``) until SIGTERM or Ctrl-C; ``announce`` gets its URL."""
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with server as url:
        announce(url)
        with contextlib.suppress(KeyboardInterrupt):
            stop.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description="Serve the labkit artifact cache (read-only) until stopped.")
    parser.add_argument("cache_dir", type=Path)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8790)
    parser.add_argument("--allow", action="append", type=ipaddress.ip_network, help="a network whose clients get answers (repeatable; default: loopback and the host's /24)")
    args = parser.parse_args()
    try:
        server = serving(args.cache_dir, args.host, args.port, allow=[*LOOPBACK, *args.allow] if args.allow else None)
        run_until_stopped(server, lambda url: print(f"serving {args.cache_dir} at {url}", flush=True))
    except KitError as exc:
        raise SystemExit(f"✗ {exc}") from None


if __name__ == "__main__":
    main()
