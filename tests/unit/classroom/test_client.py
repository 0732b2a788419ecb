"""A student's kit in a class: joining writes one block of sandbox.local.yml, the cache
fills from the class server verified against the same pins, and lab.check results wait
in an outbox while the server cannot be reached."""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path

import pytest

from labkit.cache import fetch, oci
from labkit.cache import manifest as cache_manifest
from labkit.cache.lock import Lock, Pin
from labkit.classroom import client
from labkit.classroom.store import Roster
from labkit.cluster.config import load
from labkit.cluster.schema import Classroom
from labkit.errors import KitError
from tests.unit.classroom.conftest import TOKEN, ClassServer, free_port
from tests.unit.configs import LIBVIRT_HOST, VALID, write

FILES = {"bin/hello": oci.Entry(b"#!/bin/sh\necho hello\n", 0o755)}


def classroom(url: str, token: str = TOKEN) -> Classroom:
    return Classroom(url=url, token=token, student="Ann")


def test_joining_writes_one_block_and_leaving_removes_only_it(tmp_path: Path) -> None:
    path = write(tmp_path, VALID, override="# my own settings\naddons:\n  jaeger: true  # traces\n")
    override = tmp_path / "sandbox.local.yml"
    client.write_block(override, classroom("http://192.0.2.10:8800"))
    client.write_block(override, Classroom(url="http://192.0.2.11:8800", token=TOKEN, student='Ann "the" <b>', share_progress=False))  # joined again
    text = override.read_text()
    assert text.count("classroom:") == 1 and "# my own settings" in text and "jaeger: true  # traces" in text
    resolved = load(path, LIBVIRT_HOST)
    assert resolved.config.classroom == Classroom(url="http://192.0.2.11:8800", token=TOKEN, student='Ann "the" <b>', share_progress=False)
    assert resolved.config.addons.jaeger
    assert "classroom" not in json.dumps(resolved.to_dict())  # the token never reaches the inventory
    client.write_block(override, None)
    assert "classroom" not in override.read_text() and "jaeger: true  # traces" in override.read_text()
    assert load(path, LIBVIRT_HOST).config.classroom is None


def test_a_server_that_cannot_be_reached_or_refuses_the_token_says_so(class_server: ClassServer) -> None:
    assert client.check_server(class_server.url, TOKEN) == 0
    with pytest.raises(KitError, match="refused the token"):
        client.check_server(class_server.url, "another-token-of-16-chars")
    with pytest.raises(KitError, match="cannot reach the class server"):
        client.check_server(f"http://127.0.0.1:{free_port()}", TOKEN)


def test_reports_wait_while_the_server_is_away_and_go_oldest_first(tmp_path: Path, class_server: ClassServer) -> None:
    away = classroom(f"http://127.0.0.1:{free_port()}")
    first = client.report(away, "02", {"a": False}, at=time.time() - 60)
    assert client.share(away, tmp_path, first) == (0, 1)
    second = client.report(away, "02", {"a": True}, at=time.time() - 30)
    assert client.share(away, tmp_path, second) == (0, 2)
    back = classroom(class_server.url)
    third = client.report(back, "03", {"b": False})
    assert client.share(back, tmp_path, third) == (3, 0)
    assert (tmp_path / client.OUTBOX).read_text() == ""
    rows = Roster(class_server.db).rows()
    assert [(r.student, r.lab, r.checks) for r in rows] == [("Ann", "03", {"b": False})]


def make_manifest(tmp_path: Path, tool_sha: str | None, image_url: str) -> cache_manifest.Manifest:
    per = lambda url, sha: {"amd64": {"url": url, "sha256": sha}}  # noqa: E731
    return cache_manifest.Manifest.model_validate(
        {
            "artifacts": {
                "tool": {"kind": "file", "layer": "node", "version": "1.0", "versions": {"1.0": per("https://upstream.test/tool", tool_sha)}},
                "pinned-elsewhere": {"kind": "file", "layer": "node", "version": "2", "versions": {"2": per("https://upstream.test/other", None)}},
                "image-hello": {"kind": "image", "layer": "node", "version": "1", "versions": {"1": per(image_url, None)}},
            }
        }
    )


def fill_instructor(cs: ClassServer) -> tuple[str, str]:
    """The instructor's cache, as `cache.fetch` leaves it: files, an image, the lock."""
    tool = cs.cache / "files/tool/1.0/amd64/tool"
    tool.parent.mkdir(parents=True)
    tool.write_bytes(b"tool bytes")
    other = cs.cache / "files/pinned-elsewhere/2/amd64/other"
    other.parent.mkdir(parents=True)
    other.write_bytes(b"other bytes")
    digest = oci.build_image(cs.cache / "oci", "labkit.local/t/hello", "1", FILES, ["/bin/hello"]).removeprefix("sha256:")
    lock = Lock(cs.cache)
    lock.record(
        "pinned-elsewhere",
        "2",
        "amd64",
        Pin(hashlib.sha256(b"other bytes").hexdigest(), "checksum-file", "https://upstream.test/other", evidence="https://upstream.test/SHA256SUMS"),
    )
    lock.record("image-hello", "1", "amd64", Pin(digest, "registry", "docker://labkit.local/t/hello:1"))
    return hashlib.sha256(b"tool bytes").hexdigest(), digest


def test_the_cache_fills_from_the_class_server_verified_against_the_same_pins(tmp_path: Path, class_server: ClassServer) -> None:
    tool_sha, digest = fill_instructor(class_server)
    student_cache, cls = tmp_path / "student-cache", classroom(class_server.url)
    assert client.adopt_lock(cls, student_cache) == 2
    items = cache_manifest.plan(make_manifest(tmp_path, tool_sha, "docker://labkit.local/t/hello:1"), {}, [], lock=Lock(student_cache))
    report = fetch.fetch(student_cache, items, mirrors=client.mirrors(cls), lock=Lock(student_cache))
    assert report.errors == []
    assert {o.item.name: o.origin for o in report.outcomes} == dict.fromkeys(["tool", "pinned-elsewhere", "image-hello"], f"the class server {class_server.url.split('://')[1]}")
    assert (student_cache / "files/tool/1.0/amd64/tool").read_bytes() == b"tool bytes"
    assert Lock(student_cache).get("pinned-elsewhere", "2", "amd64").source == "checksum-file"  # the instructor's pin, with its source
    assert (student_cache / "oci/tags/labkit.local/t/hello/1").read_text().strip() == f"sha256:{digest}"


def test_bytes_the_class_server_changed_are_refused(tmp_path: Path, class_server: ClassServer) -> None:
    tool_sha, _ = fill_instructor(class_server)
    (class_server.cache / "files/tool/1.0/amd64/tool").write_bytes(b"someone swapped these")
    student_cache, cls = tmp_path / "student-cache", classroom(class_server.url)
    client.adopt_lock(cls, student_cache)
    items = cache_manifest.plan(make_manifest(tmp_path, tool_sha, "docker://labkit.local/t/hello:1"), {}, [], lock=Lock(student_cache))
    report = fetch.fetch(student_cache, items, mirrors=client.mirrors(cls), lock=Lock(student_cache))
    assert len(report.errors) == 1 and "tool 1.0 amd64" in report.errors[0] and tool_sha in report.errors[0]
    assert not (student_cache / "files/tool/1.0/amd64/tool").exists()


def test_what_the_class_cache_does_not_pin_is_named_not_fetched(tmp_path: Path, class_server: ClassServer) -> None:
    student_cache, cls = tmp_path / "student-cache", classroom(class_server.url)
    assert client.adopt_lock(cls, student_cache) == 0  # the instructor's cache has no lock yet
    items = cache_manifest.plan(make_manifest(tmp_path, None, "docker://labkit.local/t/hello:1"), {}, [], lock=Lock(student_cache))
    report = fetch.fetch(student_cache, items, mirrors=client.mirrors(cls), lock=Lock(student_cache))
    assert len(report.errors) == 3 and all("does not hold it" in e for e in report.errors)


def test_a_class_pin_that_disagrees_with_ours_is_refused(tmp_path: Path, class_server: ClassServer) -> None:
    fill_instructor(class_server)
    student_cache = tmp_path / "student-cache"
    Lock(student_cache).record("pinned-elsewhere", "2", "amd64", Pin("0" * 64, "download", "https://upstream.test/other"))
    with pytest.raises(KitError, match="different bytes for the same version"):
        client.adopt_lock(classroom(class_server.url), student_cache)
