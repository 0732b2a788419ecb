"""The class server over real HTTP on loopback: the token, the progress API, the page,
the live events, and the cache served with `cache.serve`'s own routes."""

from __future__ import annotations

import json
import queue
import threading
import time
import urllib.error
import urllib.request

import pytest

from labkit.classroom import server
from labkit.classroom.store import Roster
from labkit.errors import KitError
from tests.unit.classroom.conftest import ClassServer


def call(url: str, token: str | None, data: bytes | None = None, headers: dict[str, str] | None = None) -> tuple[int, bytes, dict[str, str]]:
    sent = {**({"Authorization": f"Bearer {token}"} if token else {}), **(headers or {})}
    try:
        request = urllib.request.Request(url, data=data, headers=sent)  # noqa: S310 - loopback test server
        with urllib.request.urlopen(request, timeout=10) as resp:  # noqa: S310 - loopback test server
            return resp.status, resp.read(), dict(resp.headers)
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read(), dict(exc.headers)


def post(cs: ClassServer, student: str = "Ann", checks: dict[str, bool] | None = None, at: float | None = None, token: str | None = None) -> tuple[int, bytes]:
    body = json.dumps({"student": student, "host": "laptop", "lab": "02", "checks": checks or {"namespaces_recorded": True, "cgroup_oom_kill": False}, "at": at or time.time()})
    status, data, _ = call(f"{cs.url}/classroom/progress", token or cs.token, body.encode(), {"Content-Type": "application/json"})
    return status, data


@pytest.mark.parametrize("path", ["/", "/classroom/rows", "/classroom/events", "/labkit.lock.yml", "/v2/", "/files/x"])
def test_every_route_refuses_a_missing_or_wrong_token(class_server: ClassServer, path: str) -> None:
    assert call(class_server.url + path, None)[0] == 401
    assert call(class_server.url + path, "wrong-token-of-the-same-size")[0] == 401
    assert call(f"{class_server.url}{path}?token=not-it", None)[0] == 401


def test_a_post_without_the_token_stores_nothing(class_server: ClassServer) -> None:
    assert post(class_server, token="someone-else-on-the-wifi")[0] == 401  # noqa: S106 - a wrong token on purpose
    assert json.loads(call(f"{class_server.url}/classroom/rows", class_server.token)[1]) == []


def test_the_page_token_becomes_an_http_only_cookie(class_server: ClassServer) -> None:
    status, _, headers = call(f"{class_server.url}/?token={class_server.token}", None)
    assert status == 200
    cookie = headers.get("Set-Cookie", "")
    assert cookie.startswith(f"{server.COOKIE}=") and "HttpOnly" in cookie and "SameSite=Strict" in cookie
    assert call(f"{class_server.url}/classroom/rows", None, headers={"Cookie": f"{server.COOKIE}={class_server.token}"})[0] == 200


def test_an_oversized_or_forged_report_is_refused_and_the_page_is_unharmed(class_server: ClassServer) -> None:
    status, _, _ = call(f"{class_server.url}/classroom/progress", class_server.token, b"{" + b" " * (server.MAX_BODY + 10) + b"}", {"Content-Type": "application/json"})
    assert status == 413
    status, body, _ = call(f"{class_server.url}/classroom/progress", class_server.token, b'{"student": "x", "lab": "../../etc"}', {"Content-Type": "application/json"})
    assert status == 422 and b"error" in body
    assert post(class_server)[0] == 200
    page = call(class_server.url + "/", class_server.token)
    assert page[0] == 200 and b"Ann" in page[1]


def test_a_name_with_markup_is_shown_as_text(class_server: ClassServer) -> None:
    assert post(class_server, student='<img src=x onerror="alert(1)">')[0] == 200
    status, html, headers = call(class_server.url + "/", class_server.token)
    assert status == 200
    assert b"<img" not in html and b"&lt;img src=x onerror=&#34;alert(1)&#34;&gt;" in html
    assert "script-src 'self'" in headers["Content-Security-Policy"]  # no inline script could run either


def test_a_new_report_reaches_an_open_event_stream(class_server: ClassServer) -> None:
    got: queue.Queue[dict[str, object]] = queue.Queue()

    def listen() -> None:
        req = urllib.request.Request(f"{class_server.url}/classroom/events", headers={"Authorization": f"Bearer {class_server.token}"})  # noqa: S310 - loopback
        with urllib.request.urlopen(req, timeout=10) as resp:  # noqa: S310 - loopback test server
            for raw in resp:
                line = raw.decode().strip()
                if line.startswith("data: "):
                    got.put(json.loads(line.removeprefix("data: ")))
                    return

    listener = threading.Thread(target=listen, daemon=True)
    listener.start()
    time.sleep(0.5)  # the stream is open
    assert post(class_server, student="Bob", checks={"chroot_ran": True})[0] == 200
    row = got.get(timeout=10)
    assert row["student"] == "Bob" and row["checks"] == {"chroot_ran": True} and row["done"] is True


def test_the_cache_is_served_with_the_token_by_cache_serves_routes(class_server: ClassServer) -> None:
    target = class_server.cache / "files/tool/1.0/amd64/tool"
    target.parent.mkdir(parents=True)
    target.write_bytes(b"the bytes")
    (class_server.cache / "labkit.lock.yml").write_text("pins: {}\n")
    assert call(f"{class_server.url}/files/tool/1.0/amd64/tool", class_server.token)[1] == b"the bytes"
    assert call(f"{class_server.url}/labkit.lock.yml", class_server.token)[0] == 200
    assert call(f"{class_server.url}/v2/", class_server.token)[0] == 200
    assert call(f"{class_server.url}/files/../../etc/passwd", class_server.token)[0] == 404


def test_a_short_token_is_refused(tmp_path) -> None:
    with pytest.raises(KitError, match="16 characters"):
        server.app(tmp_path, "short", Roster(tmp_path / "p.sqlite3"))


def test_the_guide_site_is_served_to_the_room_behind_the_token(tmp_path) -> None:
    from tests.unit.classroom.conftest import free_port

    guide = tmp_path / "site"
    guide.mkdir()
    (guide / "index.html").write_text("<h1>The labs</h1>")
    roster = Roster(tmp_path / "p.sqlite3")
    with server.serving(tmp_path / "cache", "127.0.0.1", free_port(), "a-token-of-16-chars-or-more", roster, guide=guide) as url:
        assert call(f"{url}/guide/index.html", None)[0] == 401
        status, body, headers = call(f"{url}/guide/index.html?token=a-token-of-16-chars-or-more", None)
        assert status == 200 and b"The labs" in body and server.COOKIE in headers.get("Set-Cookie", "")
    roster.close()
