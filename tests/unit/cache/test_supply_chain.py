"""The connected path: trust sources, the lock, mirrors, --locked, and Debian moving on.

Upstream is a small HTTP server on loopback that this test starts (a test double of
release servers, checksum files and chart indexes). The Debian case runs the real apt
against a signed repository the test builds with a key of its own.
"""

from __future__ import annotations

import hashlib
import http.server
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from labkit.cache import fetch, store
from labkit.cache import manifest as cache_manifest
from labkit.cache.lock import Lock, LockConflict, Pin, merge, merge_pin
from labkit.cache.oci import write_atomic
from labkit.cache.trust import Mirrors, parse_chart_index, parse_checksum_file
from labkit.cluster.config import validate
from labkit.cluster.resolved import HostContext
from labkit.cluster.schema import ConfigError
from labkit.errors import KitError

BODY = b"release archive\n" * 4096


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class Upstream(http.server.BaseHTTPRequestHandler):
    """A test double of upstream: serves `files`, logs each path."""

    files: ClassVar[dict[str, bytes]] = {}
    log: ClassVar[list[str]] = []

    def do_GET(self) -> None:
        self.log.append(self.path)
        body = self.files.get(self.path)
        if body is None:
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def upstream() -> Iterator[str]:
    Upstream.files, Upstream.log = {}, []
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Upstream)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def one(tmp_path: Path, download: dict[str, object], kind: str = "archive") -> cache_manifest.Manifest:
    path = tmp_path / "m.yml"
    path.write_text(yaml.safe_dump({"artifacts": {"tool": {"kind": kind, "layer": "node", "version": "1.0", "versions": {"1.0": {"amd64": download}}}}}))
    return cache_manifest.load_manifest([path])


# --------------------------------------------------------------------------- trust sources


@pytest.mark.parametrize(
    ("text", "name", "expected"),
    [
        (f"{'a' * 64}  containerd-2.3.4-linux-amd64.tar.gz\n", "containerd-2.3.4-linux-amd64.tar.gz", "a" * 64),
        (f"{'b' * 64}\n", "kubeadm", "b" * 64),
        (f"{'c' * 64}  runc.arm64\n{'d' * 64}  runc.amd64\n", "runc.amd64", "d" * 64),
        (f"{'e' * 64} *./dist/runc.amd64\n", "runc.amd64", "e" * 64),
        # Knative's checksums.txt: one line per release asset.
        (f"{'1' * 64}  serving-crds.yaml\n{'2' * 64}  serving-core.yaml\n{'3' * 64}  serving-hpa.yaml\n", "serving-core.yaml", "2" * 64),
        (f"{'A' * 64}  x.tgz\n", "x.tgz", "a" * 64),
        (f"{'c' * 64}  runc.arm64\n{'d' * 64}  runc.s390x\n", "runc.amd64", None),
        ("not a checksum\n", "x", None),
        ("", "x", None),
    ],
)
def test_checksum_files_one_hash_or_many(text: str, name: str, expected: str | None) -> None:
    assert parse_checksum_file(text, name) == expected


def test_a_chart_repository_index_gives_each_chart_its_digest() -> None:
    index = yaml.safe_dump(
        {
            "apiVersion": "v1",
            "entries": {
                "base": [
                    {"version": "1.30.5", "digest": "5" * 64, "urls": ["https://charts.example/base-1.30.5.tgz"]},
                    {"version": "1.30.4", "digest": "4" * 64, "urls": ["https://charts.example/base-1.30.4.tgz"]},
                ],
                "istiod": [{"version": "1.30.5", "digest": "not-a-digest", "urls": ["istiod-1.30.5.tgz"]}],
            },
        }
    )
    assert parse_chart_index(index, "base-1.30.5.tgz") == "5" * 64
    assert parse_chart_index(index, "base-1.30.4.tgz") == "4" * 64
    assert parse_chart_index(index, "istiod-1.30.5.tgz") is None
    assert parse_chart_index("entries: [", "base-1.30.5.tgz") is None
    assert parse_chart_index("- a list\n", "base-1.30.5.tgz") is None


@pytest.mark.parametrize(
    ("download_extra", "served_extra", "source"),
    [
        ({"checksum_url": "/sums.txt"}, {"/sums.txt": f"{'0' * 64}  other.tgz\n{sha(BODY)}  tool-1.0.tgz\n".encode()}, "checksum-file"),
        ({"chart_index": "/index.yaml"}, {"/index.yaml": yaml.safe_dump({"entries": {"tool": [{"digest": sha(BODY), "urls": ["tool-1.0.tgz"]}]}}).encode()}, "chart-index"),
        ({}, {}, "download"),
    ],
)
def test_first_fetch_pins_from_the_strongest_source_and_records_it_in_the_lock(
    upstream: str, tmp_path: Path, download_extra: dict[str, str], served_extra: dict[str, bytes], source: str
) -> None:
    Upstream.files = {"/tool-1.0.tgz": BODY, **served_extra}
    extra = {k: upstream + v for k, v in download_extra.items()}
    m = one(tmp_path, {"url": f"{upstream}/tool-1.0.tgz", "sha256": None, **extra})
    lock = Lock(tmp_path / "c")
    items = cache_manifest.plan(m, {}, [], lock=lock)
    assert items[0].sha256 is None and "not pinned yet" in items[0].trust
    report = fetch.fetch(tmp_path / "c", items, lock=lock)
    assert report.errors == []
    pin = Lock(tmp_path / "c").get("tool", "1.0", "amd64")
    assert pin is not None and (pin.sha256, pin.source, pin.url) == (sha(BODY), source, f"{upstream}/tool-1.0.tgz")
    summary = "\n".join(report.summary())
    assert ("review these" in summary) == (source == "download")
    again = cache_manifest.plan(m, {}, [], lock=Lock(tmp_path / "c"))
    assert again[0].sha256 == sha(BODY) and again[0].pin == pin
    assert store.status(tmp_path / "c", again) == [(again[0], "present")]


@pytest.mark.parametrize(
    ("served", "message"),
    [({}, "answered HTTP 404"), ({"/sums.txt": f"{'0' * 64}  another-file.tgz\n".encode()}, "lists no sha256 for tool-1.0.tgz")],
)
def test_a_declared_checksum_file_that_fails_is_an_error_never_a_weaker_pin(upstream: str, tmp_path: Path, served: dict[str, bytes], message: str) -> None:
    Upstream.files = {"/tool-1.0.tgz": BODY, **served}
    m = one(tmp_path, {"url": f"{upstream}/tool-1.0.tgz", "sha256": None, "checksum_url": f"{upstream}/sums.txt"})
    report = fetch.fetch(tmp_path / "c", cache_manifest.plan(m, {}, []))
    assert len(report.errors) == 1 and message in report.errors[0]
    assert Lock(tmp_path / "c").pins() == {}
    assert "/tool-1.0.tgz" not in Upstream.log  # nothing downloaded without something to check it against


def test_upstream_serving_other_bytes_for_a_locked_version_is_refused_naming_both(upstream: str, tmp_path: Path) -> None:
    Upstream.files = {"/tool-1.0.tgz": BODY}
    m = one(tmp_path, {"url": f"{upstream}/tool-1.0.tgz", "sha256": None})
    assert fetch.fetch(tmp_path / "c", cache_manifest.plan(m, {}, [], lock=Lock(tmp_path / "c"))).errors == []
    items = cache_manifest.plan(m, {}, [], lock=Lock(tmp_path / "c"))
    (tmp_path / "c" / items[0].relpath()).unlink()
    Upstream.files["/tool-1.0.tgz"] = b"re-released\n"
    report = fetch.fetch(tmp_path / "c", items, lock=Lock(tmp_path / "c"))
    assert len(report.errors) == 1
    assert f"served bytes with sha256 {sha(b're-released' + bytes([10]))}" in report.errors[0]
    assert f"is pinned to sha256 {sha(BODY)} (trusted on first use" in report.errors[0]
    assert not (tmp_path / "c" / items[0].relpath()).exists()
    assert Lock(tmp_path / "c").get("tool", "1.0", "amd64").sha256 == sha(BODY)  # type: ignore[union-attr]


def test_a_repository_pin_wins_and_is_verified(upstream: str, tmp_path: Path) -> None:
    Upstream.files = {"/tool-1.0.tgz": BODY}
    m = one(tmp_path, {"url": f"{upstream}/tool-1.0.tgz", "sha256": "f" * 64})
    Lock(tmp_path / "c").record("tool", "1.0", "amd64", Pin(sha(BODY), "download", f"{upstream}/tool-1.0.tgz"))
    items = cache_manifest.plan(m, {}, [], lock=Lock(tmp_path / "c"))
    assert items[0].sha256 == "f" * 64 and items[0].trust == "pinned in the repository"
    report = fetch.fetch(tmp_path / "c", items)
    assert "pinned to sha256 " + "f" * 64 + " (pinned in the repository" in report.errors[0]


def test_locked_refuses_what_the_repository_does_not_pin_even_when_the_lock_has_it(tmp_path: Path) -> None:
    m = one(tmp_path, {"url": "https://example.invalid/tool-1.0.tgz", "sha256": None})
    Lock(tmp_path / "c").record("tool", "1.0", "amd64", Pin("a" * 64, "checksum-file", "https://example.invalid/tool-1.0.tgz"))
    assert cache_manifest.plan(m, {}, [], lock=Lock(tmp_path / "c"))[0].sha256 == "a" * 64
    with pytest.raises(KitError, match=r"--locked: the repository does not pin these artifacts, so nothing was fetched or booted:\n  - tool 1\.0 \(amd64\)"):
        cache_manifest.plan(m, {}, [], lock=Lock(tmp_path / "c"), locked=True)


def test_a_lock_entry_for_another_url_is_not_used(tmp_path: Path) -> None:
    m = one(tmp_path, {"url": "https://example.invalid/tool-1.0.tgz", "sha256": None})
    Lock(tmp_path / "c").record("tool", "1.0", "amd64", Pin("a" * 64, "download", "https://old.example.invalid/tool-1.0.tgz"))
    assert cache_manifest.plan(m, {}, [], lock=Lock(tmp_path / "c"))[0].sha256 is None


# --------------------------------------------------------------------------- the lock


def test_the_same_checksum_is_one_pin_keeping_the_stronger_source_and_the_earlier_date() -> None:
    first_use = Pin("a" * 64, "download", "u", date="2026-01-01T00:00:00+00:00")
    published = Pin("a" * 64, "checksum-file", "u", evidence="u.sha256", date="2026-06-01T00:00:00+00:00")
    kept = merge_pin("k", first_use, published)
    assert (kept.source, kept.evidence, kept.date) == ("checksum-file", "u.sha256", "2026-01-01T00:00:00+00:00")
    assert merge_pin("k", published, first_use).source == "checksum-file"


def test_a_different_checksum_for_the_same_key_is_a_conflict_naming_both() -> None:
    ours = {"tool 1.0 amd64": Pin("a" * 64, "checksum-file", "u", evidence="u.sha256")}
    theirs = {"tool 1.0 amd64": Pin("b" * 64, "download", "u"), "other 2 arm64": Pin("c" * 64, "registry", "docker://x:2")}
    with pytest.raises(LockConflict) as err:
        merge(ours, theirs)
    assert "a" * 64 in str(err.value) and "b" * 64 in str(err.value) and "tool 1.0 amd64" in str(err.value)
    assert set(merge(ours, {"other 2 arm64": theirs["other 2 arm64"]})) == {"tool 1.0 amd64", "other 2 arm64"}


def test_a_debian_package_that_moved_may_move_again() -> None:
    old = Pin("a" * 64, "debian-index", "u", version="1.0-2", fetch_url="u2")
    new = Pin("b" * 64, "debian-index", "u", version="1.0-3", fetch_url="u3")
    assert merge_pin("deb-x 1.0-1 amd64", old, new) == new


def test_two_writers_of_one_lock_file_merge_their_pins(tmp_path: Path) -> None:
    a, b = Lock(tmp_path), Lock(tmp_path)  # as two processes would hold it
    a.pins()
    b.record("x", "1", "amd64", Pin("b" * 64, "download", "u"))
    a.record("y", "1", "amd64", Pin("c" * 64, "download", "v"))
    assert set(Lock(tmp_path).pins()) == {"x 1 amd64", "y 1 amd64"}
    with pytest.raises(LockConflict):
        a.record("x", "1", "amd64", Pin("d" * 64, "download", "u"))
    assert Lock(tmp_path).get("x", "1", "amd64").sha256 == "b" * 64  # type: ignore[union-attr]


@settings(max_examples=150, deadline=None)
@given(st.text(max_size=300))
def test_any_lock_file_reads_or_fails_with_a_message_never_a_traceback(tmp_path_factory: pytest.TempPathFactory, text: str) -> None:
    folder = tmp_path_factory.mktemp("lock")
    (folder / "labkit.lock.yml").write_text(text)
    try:
        Lock(folder).pins()
    except KitError as exc:
        assert "labkit.lock.yml" in str(exc) or "lock" in str(exc)


# --------------------------------------------------------------------------- mirrors


def test_mirrors_rewrite_the_longest_matching_prefix_and_nothing_else() -> None:
    m = Mirrors(files={"https://github.com/": "https://proxy.example/gh/", "https://github.com/istio/": "https://proxy.example/istio/"})
    assert m.rewrite("https://github.com/containerd/x.tgz") == "https://proxy.example/gh/containerd/x.tgz"
    assert m.rewrite("https://github.com/istio/istio/y.tgz") == "https://proxy.example/istio/istio/y.tgz"
    assert m.rewrite("https://github.com.evil.example/x") == "https://github.com.evil.example/x"
    assert m.rewrite("https://dl.k8s.io/release/v1/kubeadm") == "https://dl.k8s.io/release/v1/kubeadm"


prefixes = st.from_regex(r"https://[a-z]{1,8}\.example/([a-z]{1,5}/){0,2}", fullmatch=True)


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(prefixes, prefixes, max_size=4), prefixes, st.text(alphabet="abcxyz/.-_", max_size=30))
def test_a_rewrite_keeps_the_rest_of_the_url(files: dict[str, str], base: str, rest: str) -> None:
    url = base + rest
    rewritten = Mirrors(files=files).rewrite(url)
    matching = [p for p in files if url.startswith(p)]
    if not matching:
        assert rewritten == url
    else:
        longest = max(matching, key=len)
        assert rewritten == files[longest] + url[len(longest) :]


def test_fetch_through_a_mirror_pins_the_upstream_url(upstream: str, tmp_path: Path) -> None:
    Upstream.files = {"/mirror/tool-1.0.tgz": BODY, "/mirror/tool-1.0.tgz.sha256": f"{sha(BODY)}  tool-1.0.tgz\n".encode()}
    url = "https://releases.example.invalid/tool-1.0.tgz"
    m = one(tmp_path, {"url": url, "sha256": None, "checksum_url": url + ".sha256"})
    mirrors = Mirrors(files={"https://releases.example.invalid/": f"{upstream}/mirror/"})
    report = fetch.fetch(tmp_path / "c", cache_manifest.plan(m, {}, []), mirrors=mirrors)
    assert report.errors == []
    assert report.outcomes[0].origin == "mirror 127.0.0.1:" + upstream.rsplit(":", 1)[1]
    pin = Lock(tmp_path / "c").get("tool", "1.0", "amd64")
    assert pin is not None and pin.url == url and pin.evidence == url + ".sha256"


VALID = {
    "nodes": [{"name": "cp1", "role": "control-plane", "cpus": 2, "memory": 4096}],
    "layers": {"kubernetes": False, "istio": False, "knative": False},
    "versions": {"kubernetes": "1.36.4", "containerd": "2.3.4", "runc": "1.4.3", "cni_plugins": "1.9.1", "cni_version": "0.28.9", "istio": "1.30.5", "knative": "1.23.0"},
    "provider": "libvirt",
}


@pytest.mark.parametrize(
    ("mirrors", "where", "fix"),
    [
        ({"files": {"https://github.com": "https://m.example/gh/"}}, "cache.mirrors.files['https://github.com']", "'https://github.com/'"),
        ({"files": {"https://github.com/": "ftp://m.example/"}}, "cache.mirrors.files['https://github.com/']", "write both sides like"),
        ({"registries": {"Docker Hub": "https://m.example"}}, "cache.mirrors.registries['Docker Hub']", "docker.io"),
        ({"registries": {"docker.io": "harbor.example"}}, "cache.mirrors.registries['docker.io']", "base URL"),
        ({"registry": {}}, "cache.mirrors.registry", "did you mean `registries`"),
    ],
)
def test_mirrors_are_validated_like_every_other_key(mirrors: dict[str, object], where: str, fix: str) -> None:
    with pytest.raises(ConfigError) as err:
        validate({**VALID, "cache": {"mirrors": mirrors}}, source="sandbox.yml", host=HostContext(providers=("libvirt",)), root=Path("/tmp"))
    assert where in str(err.value) and fix in str(err.value)


def test_valid_mirrors_pass() -> None:
    mirrors = {"files": {"https://github.com/": "https://m.example/gh/"}, "registries": {"docker.io": "https://harbor.example/hub", "localhost:5000": "http://127.0.0.1:5000"}}
    resolved = validate({**VALID, "cache": {"mirrors": mirrors}}, source="sandbox.yml", host=HostContext(providers=("libvirt",)), root=Path("/tmp"))
    assert resolved.config.cache.mirrors.registries["docker.io"] == "https://harbor.example/hub"


# --------------------------------------------------------------------------- concurrency


def test_workers_writing_one_blob_at_once_never_collide(tmp_path: Path) -> None:
    data = os.urandom(1 << 20)
    target = tmp_path / "blobs/sha256" / sha(data)
    errors: list[BaseException] = []

    def write() -> None:
        try:
            for _ in range(20):
                write_atomic(target, data)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=write) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == [] and sha(target.read_bytes()) == sha(data)
    assert [p.name for p in target.parent.iterdir()] == [target.name]


# --------------------------------------------------------------------------- Debian moves on

NEEDS_APT = pytest.mark.skipif(not all(shutil.which(t) for t in ("apt-get", "gpg", "dpkg-deb")), reason="needs apt-get, gpg and dpkg-deb (a Debian host)")


def _deb(folder: Path, version: str) -> Path:
    root = folder / f"pkg-{version}"
    (root / "DEBIAN").mkdir(parents=True)
    control = f"Package: labkit-test\nVersion: {version}\nArchitecture: all\nMaintainer: test <t@example.invalid>\nDescription: a test package\n"
    (root / "DEBIAN/control").write_text(control)
    out = folder / f"labkit-test_{version}_all.deb"
    subprocess.run(["dpkg-deb", "--root-owner-group", "-b", str(root), str(out)], check=True, capture_output=True)
    return out


def _signed_repo(root: Path, deb: Path, home: Path) -> None:
    """A Debian-style repository (dists/trixie, pool/) whose InRelease is signed with a test key."""
    from labkit.cache.debs import control_of

    pool = root / "debian/pool/main/l/labkit-test"
    pool.mkdir(parents=True)
    shutil.copy(deb, pool / deb.name)
    body = deb.read_bytes()
    packages = (control_of(deb) + f"Filename: pool/main/l/labkit-test/{deb.name}\nSize: {len(body)}\nSHA256: {sha(body)}\n").encode()
    dist = root / "debian/dists/trixie"
    (dist / "main/binary-amd64").mkdir(parents=True)
    (dist / "main/binary-amd64/Packages").write_bytes(packages)
    release = "Suite: trixie\nCodename: trixie\nDate: Thu, 01 Jan 2026 00:00:00 UTC\nArchitectures: amd64\nComponents: main\n"
    release += f"SHA256:\n {sha(packages)} {len(packages)} main/binary-amd64/Packages\n"
    gpg = ["gpg", "--homedir", str(home), "--batch", "--yes"]
    signed = subprocess.run([*gpg, "--clearsign"], input=release.encode(), capture_output=True, check=True).stdout
    (dist / "InRelease").write_bytes(signed)


def _key(home: Path, keyring: Path) -> None:
    home.mkdir(mode=0o700)
    gpg = ["gpg", "--homedir", str(home), "--batch", "--yes"]
    subprocess.run([*gpg, "--passphrase", "", "--quick-gen-key", "test <t@example.invalid>", "ed25519", "sign", "never"], check=True, capture_output=True)
    keyring.write_bytes(subprocess.run([*gpg, "--export"], capture_output=True, check=True).stdout)


@NEEDS_APT
@pytest.mark.parametrize("trusted", [True, False])
def test_a_pinned_deb_gone_from_the_mirror_moves_on_through_the_signed_index(tmp_path: Path, trusted: bool) -> None:
    from labkit.cache.debs import MovedDebs

    served = tmp_path / "served"
    newer = _deb(tmp_path, "1.0-2")
    _key(tmp_path / "gpg", tmp_path / "key.gpg")
    _key(tmp_path / "other-gpg", tmp_path / "other.gpg")
    _signed_repo(served, newer, tmp_path / "gpg")
    handler = lambda *a: http.server.SimpleHTTPRequestHandler(*a, directory=str(served))  # noqa: E731
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{httpd.server_address[1]}/debian"
    try:
        pinned_url = f"{base}/pool/main/l/labkit-test/labkit-test_1.0-1_all.deb"  # gone: superseded by 1.0-2
        path = tmp_path / "debs.yml"
        entry = {"kind": "deb", "layer": "node", "version": "1.0-1", "versions": {"1.0-1": {"all": {"url": pinned_url, "sha256": "0" * 64}}}}
        path.write_text(yaml.safe_dump({"artifacts": {"deb-labkit-test": entry}}))
        m = cache_manifest.load_manifest([path])
        lock = Lock(tmp_path / "c")
        moved = MovedDebs("trixie", tmp_path / ("key.gpg" if trusted else "other.gpg"), say=lambda _: None)
        report = fetch.fetch(tmp_path / "c", cache_manifest.plan(m, {}, [], lock=lock), lock=lock, moved=moved)
        if not trusted:  # an index signed by a key apt does not trust is refused by apt itself
            assert len(report.errors) == 1 and "apt-get update" in report.errors[0]
            assert lock.pins() == {}
            return
        assert report.errors == []
        pin = Lock(tmp_path / "c").get("deb-labkit-test", "1.0-1", "amd64")
        assert pin is not None and (pin.source, pin.version, pin.sha256) == ("debian-index", "1.0-2", sha(newer.read_bytes()))
        items = cache_manifest.plan(m, {}, [], lock=Lock(tmp_path / "c"))
        assert (items[0].version, items[0].pinned_version, items[0].filename) == ("1.0-2", "1.0-1", newer.name)
        assert store.status(tmp_path / "c", items) == [(items[0], "present")]
        assert "moved" in items[0].trust
    finally:
        httpd.shutdown()
        httpd.server_close()
        from labkit.dev.double import stop_gpg_agent

        for home in ("gpg", "other-gpg"):  # the agents gpg started for the two keys
            stop_gpg_agent(tmp_path / home)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=400), st.text(min_size=1, max_size=40))
def test_any_checksum_file_or_chart_index_gives_a_hash_or_none_never_a_traceback(text: str, name: str) -> None:
    for parse in (parse_checksum_file, parse_chart_index):
        got = parse(text, name)
        assert got is None or (len(got) == 64 and all(c in "0123456789abcdef" for c in got))


# --------------------------------------------------------------------------- Ctrl-C

SLOW = os.urandom(1 << 20) * 24  # 24 MiB, served slowly


class SlowUpstream(http.server.BaseHTTPRequestHandler):
    """A test double of a slow release server: 64 KiB every 20 ms, with Range support."""

    ranges: ClassVar[list[str | None]] = []

    def do_GET(self) -> None:
        rng = self.headers.get("Range")
        self.ranges.append(rng)
        start = int(rng.split("=")[1].split("-")[0]) if rng else 0
        self.send_response(206 if rng else 200)
        self.send_header("Content-Length", str(len(SLOW) - start))
        self.end_headers()
        try:
            for offset in range(start, len(SLOW), 1 << 16):
                self.wfile.write(SLOW[offset : offset + (1 << 16)])
                if not rng:
                    time.sleep(0.02)
        except (BrokenPipeError, ConnectionResetError):
            pass

    def log_message(self, *args: object) -> None:
        pass


INTERRUPTIBLE = """
import sys
from pathlib import Path
from labkit.cache import fetch, manifest as cache_manifest
items = cache_manifest.plan(cache_manifest.load_manifest([Path(sys.argv[1])]), {}, [])
try:
    fetch.fetch(Path(sys.argv[2]), items)
except KeyboardInterrupt:
    print("interrupted", flush=True)
    sys.exit(130)
"""


def test_ctrl_c_stops_a_fetch_hides_the_partial_file_and_a_rerun_resumes(tmp_path: Path) -> None:
    SlowUpstream.ranges = []
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), SlowUpstream)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{httpd.server_address[1]}/big.tgz"
        manifest = tmp_path / "m.yml"
        entry = {"kind": "file", "layer": "node", "version": "1", "versions": {"1": {"amd64": {"url": url, "sha256": sha(SLOW)}}}}
        manifest.write_text(yaml.safe_dump({"artifacts": {"big": entry}}))
        cache_dir = tmp_path / "c"
        root = Path(__file__).resolve().parents[3]
        child = subprocess.Popen([sys.executable, "-c", INTERRUPTIBLE, str(manifest), str(cache_dir)], cwd=root, stdout=subprocess.PIPE, text=True)
        target = cache_dir / "files/big/1/amd64/big.tgz"
        part = target.with_name(".big.tgz.amd64.part")
        deadline = time.monotonic() + 60
        while not (part.exists() and part.stat().st_size > 0) and time.monotonic() < deadline:
            time.sleep(0.05)
        sent = time.monotonic()
        child.send_signal(signal.SIGINT)
        out, _ = child.communicate(timeout=30)
        print(f"fetch stopped {time.monotonic() - sent:.2f} s after SIGINT")
        assert child.returncode == 130 and "interrupted" in out
        assert not target.exists()  # nothing half-written where the roles would read it
        have = part.stat().st_size
        assert 0 < have < len(SLOW)
        assert fetch.fetch(cache_dir, cache_manifest.plan(cache_manifest.load_manifest([manifest]), {}, [])).errors == []
        assert SlowUpstream.ranges[-1] == f"bytes={have}-"  # resumed where it stopped
        assert sha(target.read_bytes()) == sha(SLOW) and not part.exists()
    finally:
        httpd.shutdown()
        httpd.server_close()


@pytest.mark.parametrize(
    "pins",
    ["pins: {x: {sha256: 1, source: download, url: u}}", "pins: {x: {sha256: [a], source: [download], url: u}}", "pins: {x: text}", "pins: {x: {bogus: y}}"],
)
def test_a_lock_entry_of_the_wrong_shape_is_a_message(tmp_path: Path, pins: str) -> None:
    (tmp_path / "labkit.lock.yml").write_text(pins + "\n")
    with pytest.raises(KitError, match="entry 'x' is malformed"):
        Lock(tmp_path).pins()
