"""The instructor's server (`./kit classroom.serve`): the artifact cache for the whole room
and the live progress page, in one aiohttp application.

- The cache's routes are `cache.serve`'s own (``labkit.cache.serve.add_cache_routes``):
  files, the apt repository, the image registry (`/v2/`), and the cache's lock
  (`/labkit.lock.yml`), from which the students' kits take the pins the repository does
  not hold. Students verify every byte against those pins, as always.
- ``POST /classroom/progress``: a student's `lab.check` results (``store.Report``, at most
  ``MAX_BODY`` bytes), kept in SQLite (``store.Roster``).
- ``GET /``: the progress page (a Jinja template, autoescaped); ``GET /classroom/events``:
  server-sent events (aiohttp-sse) that update the page's rows without a reload.
- ``GET /guide/``: the guide site (`./kit docs`), when it has been built, so the room
  reads the labs from the instructor's machine too.

Every route asks for the class token (``Authorization: Bearer``, the page's cookie, or
``?token=`` once, which sets the cookie); a wrong one gets 401 and nothing else. The
token is compared in constant time.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import ipaddress
import json
import secrets
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

import jinja2
from aiohttp import web
from aiohttp_sse import sse_response

from labkit.cache import serve
from labkit.classroom.store import Roster, Row, parse_report
from labkit.errors import KitError

MAX_BODY = 8 << 10
COOKIE = "labkit_class"
STUCK_AFTER = 15 * 60  # seconds without a change before a row is highlighted
ANYWHERE = (ipaddress.ip_network("0.0.0.0/0"), ipaddress.ip_network("::/0"))
TEMPLATES = jinja2.Environment(loader=jinja2.PackageLoader("labkit.classroom"), autoescape=True, keep_trailing_newline=True)


def new_token() -> str:
    return secrets.token_urlsafe(18)


class Hub:
    """The open event streams; each changed row goes to every one of them."""

    def __init__(self) -> None:
        self.queues: set[asyncio.Queue[str | None]] = set()

    def publish(self, row: Row) -> None:
        data = json.dumps(row.as_json())
        for queue in self.queues:
            with contextlib.suppress(asyncio.QueueFull):
                queue.put_nowait(data)

    async def close(self, _app: web.Application) -> None:
        """On shutdown: every stream ends (the browsers reconnect to the next server)."""
        for queue in self.queues:
            with contextlib.suppress(asyncio.QueueFull):
                queue.put_nowait(None)


ROSTER = web.AppKey("roster", Roster)
HUB = web.AppKey("hub", Hub)


def _token_guard(token: str) -> Callable[..., Awaitable[web.StreamResponse]]:
    @web.middleware
    async def guard(request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]) -> web.StreamResponse:
        auth = request.headers.get("Authorization", "")
        given = auth.removeprefix("Bearer ").strip() if auth.startswith("Bearer ") else request.cookies.get(COOKIE) or request.query.get("token", "")
        if not hmac.compare_digest(given.encode(), token.encode()):
            return web.Response(status=401, text="this class needs its token: `./kit classroom.join URL --token T`\n")
        response = await handler(request)
        if request.query.get("token") and request.method == "GET" and (request.path == "/" or request.path.startswith("/guide/")):
            response.set_cookie(COOKIE, token, httponly=True, samesite="Strict")
        return response

    return guard


async def page(request: web.Request) -> web.Response:
    rows = [r.as_json() for r in request.app[ROSTER].rows()]
    html = TEMPLATES.get_template("progress.html.j2").render(rows=rows, stuck_after=STUCK_AFTER)
    return web.Response(text=html, content_type="text/html", headers={"Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self'"})


async def script(request: web.Request) -> web.Response:
    return web.Response(text=TEMPLATES.get_template("progress.js").render(), content_type="text/javascript")


async def style(request: web.Request) -> web.Response:
    return web.Response(text=TEMPLATES.get_template("progress.css").render(), content_type="text/css")


async def rows(request: web.Request) -> web.Response:
    return web.json_response([r.as_json() for r in request.app[ROSTER].rows()])


async def progress(request: web.Request) -> web.Response:
    body = await request.read()  # over client_max_size: aiohttp answers 413 itself
    try:
        report = parse_report(body)
    except KitError as exc:
        return web.json_response({"error": str(exc)}, status=422)
    row = request.app[ROSTER].record(report)
    if row is not None:
        request.app[HUB].publish(row)
    return web.json_response({"stored": row is not None})


async def events(request: web.Request) -> web.StreamResponse:
    queue: asyncio.Queue[str | None] = asyncio.Queue(maxsize=256)
    hub = request.app[HUB]
    hub.queues.add(queue)
    try:
        async with sse_response(request) as stream:
            stream.ping_interval = 15
            for row in request.app[ROSTER].rows():
                await stream.send(json.dumps(row.as_json()), event="row")
            while stream.is_connected() and (data := await queue.get()) is not None:
                await stream.send(data, event="row")
    finally:
        hub.queues.discard(queue)
    return stream


def app(
    cache_dir: Path,
    token: str,
    roster: Roster,
    *,
    allow: Sequence[ipaddress.IPv4Network | ipaddress.IPv6Network] = ANYWHERE,
    max_active: int = 64,
    guide: Path | None = None,
) -> web.Application:
    """The class server's application; ``guide``: the built guide site, served at /guide/."""
    if len(token) < 16:
        raise KitError("a class token has at least 16 characters (leave --token out and the kit makes one)")
    application = web.Application(middlewares=[serve.client_guard(allow, max_active), _token_guard(token)], client_max_size=MAX_BODY)
    application[ROSTER] = roster
    application[HUB] = Hub()
    application.on_shutdown.append(application[HUB].close)
    application.router.add_get("/", page)
    application.router.add_get("/classroom/progress.js", script)
    application.router.add_get("/classroom/progress.css", style)
    application.router.add_get("/classroom/rows", rows)
    application.router.add_get("/classroom/events", events)
    application.router.add_post("/classroom/progress", progress)
    if guide is not None and (guide / "index.html").exists():
        application.router.add_static("/guide/", guide)
    serve.add_cache_routes(application, cache_dir, exclude=["classroom/", "guide/"])
    return application


def serving(cache_dir: Path, host: str, port: int, token: str, roster: Roster, **kwargs: Any) -> contextlib.AbstractContextManager[str]:
    """Serve the class from a background thread; yields the base URL."""
    return serve.serving(cache_dir, host, port, application=app(cache_dir, token, roster, **kwargs), what="the class")


def main() -> None:
    """`python -m labkit.classroom.server CACHE --port P --token T --db FILE`: the class
    server alone (the classroom benchmark runs it as its own process)."""
    import argparse

    parser = argparse.ArgumentParser(description="Serve a labkit class (the cache and the progress page) until stopped.")
    parser.add_argument("cache_dir", type=Path)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8800)
    parser.add_argument("--token", required=True)
    parser.add_argument("--db", type=Path, required=True)
    args = parser.parse_args()
    try:
        roster = Roster(args.db)
        serve.run_until_stopped(serving(args.cache_dir, args.host, args.port, args.token, roster), lambda url: print(f"serving the class at {url}", flush=True))
    except KitError as exc:
        raise SystemExit(f"✗ {exc}") from None


if __name__ == "__main__":
    main()
