"""The cache server: only the cache's own files, only to allowed clients, streamed with Range.

Each test starts the real server on loopback over a small cache folder of its own.
"""

from __future__ import annotations

import hashlib
import http.client
import ipaddress
import socket
import threading
import urllib.parse
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from labkit.cache import oci, serve
from labkit.errors import KitError

BLOB = bytes(range(256)) * 8192  # 2 MiB


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def request(port: int, path: str, method: str = "GET", headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    conn.request(method, path, headers=headers or {})
    resp = conn.getresponse()
    body = resp.read()
    conn.close()
    return resp.status, {k.lower(): v for k, v in resp.getheaders()}, body


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("served") / "cache"
    (root / "files/tool/1/amd64").mkdir(parents=True)
    (root / "files/tool/1/amd64/tool").write_bytes(b"a tool\n")
    secret = root.parent / "secret.txt"
    secret.write_text("host file outside the cache\n")
    (root / "files/escape").symlink_to(secret)
    digest = "sha256:" + hashlib.sha256(BLOB).hexdigest()
    (root / "oci/blobs/sha256").mkdir(parents=True)
    (root / "oci/blobs/sha256" / digest.removeprefix("sha256:")).write_bytes(BLOB)
    (root / "oci/tags/evil").mkdir(parents=True)
    (root / "oci/tags/evil/latest").symlink_to(secret)
    oci.build_image(root / "oci", "labkit.local/t/app", "1", {"bin/app": oci.Entry(b"#!/bin/sh\n", 0o755)}, ["/bin/app"])
    return root


@pytest.fixture(scope="module")
def port(cache: Path) -> Iterator[int]:
    p = free_port()
    with serve.serving(cache, "127.0.0.1", p):
        yield p


def test_release_files_are_served_and_nothing_outside_the_cache(port: int) -> None:
    assert request(port, "/files/tool/1/amd64/tool")[2] == b"a tool\n"
    assert request(port, "/files/./tool/1/amd64/tool")[2] == b"a tool\n"  # apt asks for /debs/./Packages
    assert request(port, "/debs/./Packages")[0] == 200
    for path in ("/files/escape", "/files/../../secret.txt", "/files/%2e%2e/%2e%2e/secret.txt", "/files/", "/files", "/../secret.txt", "/files/tool/1/amd64/tool%00"):
        status, _, body = request(port, path)
        assert status in (400, 404), (path, status)
        assert b"host file" not in body


def test_registry_names_and_references_follow_the_distribution_grammar(port: int, cache: Path) -> None:
    assert request(port, "/v2/t/app/manifests/1?ns=labkit.local")[0] == 200
    for path in (
        "/v2/evil/manifests/latest",  # a tag file that is a symlink out of the cache
        "/v2/../../etc/manifests/1",
        "/v2/t/app/manifests/1?ns=../../x",
        "/v2/T/App/manifests/1",
        "/v2/t/app/manifests/..",
        "/v2/t/app/blobs/latest",
        "/v2/t/app/blobs/sha256:" + "0" * 64,
    ):
        status, _, body = request(port, path)
        assert status == 404, (path, status)
        assert b"host file" not in body


def test_blobs_stream_with_range_and_head(port: int) -> None:
    digest = "sha256:" + hashlib.sha256(BLOB).hexdigest()
    status, headers, body = request(port, f"/v2/any/name/blobs/{digest}")
    assert status == 200 and body == BLOB and headers["docker-content-digest"] == digest
    status, headers, body = request(port, f"/v2/any/name/blobs/{digest}", headers={"Range": "bytes=1000-1999"})
    assert status == 206 and body == BLOB[1000:2000]
    status, headers, body = request(port, f"/v2/any/name/blobs/{digest}", method="HEAD")
    assert status == 200 and headers["content-length"] == str(len(BLOB)) and body == b""
    status, _, body = request(port, "/files/tool/1/amd64/tool", headers={"Range": "bytes=2-"})
    assert status == 206 and body == b"tool\n"


def test_clients_outside_the_allowed_networks_get_no_answer(cache: Path) -> None:
    p = free_port()
    with serve.serving(cache, "127.0.0.1", p, allow=[ipaddress.ip_network("192.168.60.0/24")]):
        assert request(p, "/files/tool/1/amd64/tool")[0] == 403
        assert request(p, "/v2/")[0] == 403


def test_more_pulls_than_the_server_serves_at_once_wait_their_turn(cache: Path) -> None:
    p = free_port()
    digest = "sha256:" + hashlib.sha256(BLOB).hexdigest()
    results: list[bytes] = []
    with serve.serving(cache, "127.0.0.1", p, max_active=2):
        threads = [threading.Thread(target=lambda: results.append(request(p, f"/v2/x/blobs/{digest}")[2])) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
    assert len(results) == 8 and all(r == BLOB for r in results)


def test_a_port_in_use_is_a_message(cache: Path) -> None:
    p = free_port()
    with serve.serving(cache, "127.0.0.1", p), pytest.raises(KitError, match=r"cannot serve the artifact cache on 127\.0\.0\.1"), serve.serving(cache, "127.0.0.1", p):
        pass


@settings(max_examples=150, deadline=None)
@given(st.text(alphabet="abc./%2e0:?=&-_~\\", min_size=1, max_size=40))
def test_no_path_reaches_outside_the_cache_or_errors(port: int, tail: str) -> None:
    for prefix in ("/files/", "/v2/", "/"):
        path = prefix + urllib.parse.quote(tail, safe="/%?=&.:")
        try:
            status, _, body = request(port, path)
        except http.client.HTTPException:
            continue  # the client refused to send it
        assert status in (200, 400, 403, 404, 416), (path, status)
        assert b"host file" not in body
