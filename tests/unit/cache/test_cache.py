"""The artifact cache: plan from the config, fetch (resume, verify, parallel), status, add.
Downloads go to a small HTTP server on loopback that this test starts."""

from __future__ import annotations

import hashlib
import http.server
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

import pytest
import yaml

from labkit import paths
from labkit.cache import fetch as cache_fetch
from labkit.cache import manifest as cache_manifest
from labkit.cache import store
from labkit.errors import KitError

PAYLOAD = bytes(range(256)) * 4096  # 1 MiB
OTHER = b"another artifact\n" * 1000


class RangeHandler(http.server.BaseHTTPRequestHandler):
    """Serves files from `files` (a class attribute) with HTTP Range support, and logs requests."""

    files: ClassVar[dict[str, bytes]] = {}
    log: ClassVar[list[tuple[str, str | None]]] = []

    def do_GET(self) -> None:
        body = self.files.get(self.path)
        self.log.append((self.path, self.headers.get("Range")))
        if body is None:
            self.send_error(404)
            return
        start = 0
        rng = self.headers.get("Range")
        if rng:
            start = int(rng.split("=")[1].split("-")[0])
            if start >= len(body):
                self.send_error(416)
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
        else:
            self.send_response(200)
        self.send_header("Content-Length", str(len(body) - start))
        self.end_headers()
        self.wfile.write(body[start:])

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def server() -> Iterator[str]:
    RangeHandler.files = {"/c/containerd-2.3.4-linux-amd64.tar.gz": PAYLOAD, "/k/kubeadm": OTHER, "/bad/runc.amd64": b"tampered"}
    RangeHandler.log = []
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), RangeHandler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def manifest(base: str, tmp_path: Path) -> cache_manifest.Manifest:
    data = {
        "artifacts": {
            "containerd": {
                "kind": "archive",
                "layer": "node",
                "version_key": "containerd",
                "versions": {"2.3.4": {"amd64": {"url": f"{base}/c/containerd-2.3.4-linux-amd64.tar.gz", "sha256": sha(PAYLOAD)}}},
            },
            "kubeadm": {
                "kind": "file",
                "layer": "kubernetes",
                "version_key": "kubernetes",
                "versions": {"1.36.4": {"amd64": {"url": f"{base}/k/kubeadm", "sha256": sha(OTHER)}}},
            },
            "runc": {
                "kind": "file",
                "layer": "node",
                "version": "1.3.6",
                "versions": {"1.3.6": {"all": {"url": f"{base}/bad/runc.amd64", "sha256": sha(b"the real runc")}}},
            },
        }
    }
    path = tmp_path / "m.yml"
    path.write_text(yaml.safe_dump(data))
    return cache_manifest.load_manifest([path])


VERSIONS = {"containerd": "2.3.4", "kubernetes": "1.36.4"}


def test_plan_follows_config_versions_and_layers(server: str, tmp_path: Path) -> None:
    m = manifest(server, tmp_path)
    assert [i.name for i in cache_manifest.plan(m, VERSIONS, [])] == ["containerd", "runc"]
    items = cache_manifest.plan(m, VERSIONS, ["kubernetes"])
    assert [(i.name, i.version) for i in items] == [("containerd", "2.3.4"), ("kubeadm", "1.36.4"), ("runc", "1.3.6")]
    assert items[0].relpath() == Path("files/containerd/2.3.4/amd64/containerd-2.3.4-linux-amd64.tar.gz")


def test_plan_refuses_a_version_the_manifest_does_not_list(server: str, tmp_path: Path) -> None:
    with pytest.raises(KitError, match=r"no entry for:\n  - containerd 2\.3\.0 \(the manifest has 2\.3\.4\)"):
        cache_manifest.plan(manifest(server, tmp_path), {**VERSIONS, "containerd": "2.3.0"}, [])


def test_plan_refuses_a_missing_architecture(server: str, tmp_path: Path) -> None:
    with pytest.raises(KitError, match=r"containerd 2\.3\.4 for arm64"):
        cache_manifest.plan(manifest(server, tmp_path), VERSIONS, [], arch="arm64")


class Seen(cache_fetch.Reporter):
    """A test double of the progress display: records what the fetch told it."""

    def __init__(self) -> None:
        self.outcomes: dict[str, str] = {}
        self.totals: dict[str, int | None] = {}
        self.bytes: dict[str, int] = {}

    def start(self, item: cache_manifest.Item, total: int | None) -> None:
        self.totals[item.name] = total

    def advance(self, item: cache_manifest.Item, n: int) -> None:
        self.bytes[item.name] = self.bytes.get(item.name, 0) + n

    def done(self, item: cache_manifest.Item, outcome: str) -> None:
        self.outcomes[item.name] = outcome


def test_fetch_downloads_verifies_and_reports_bad_checksums(server: str, tmp_path: Path) -> None:
    items = cache_manifest.plan(manifest(server, tmp_path), VERSIONS, ["kubernetes"])
    seen = Seen()
    report = cache_fetch.fetch(tmp_path / "c", items, jobs=3, reporter=seen)
    assert seen.outcomes == {"containerd": "fetched", "kubeadm": "fetched", "runc": "failed"}
    assert seen.totals["containerd"] == len(PAYLOAD) and seen.bytes["containerd"] == len(PAYLOAD)
    assert len(report.errors) == 1 and f"served bytes with sha256 {sha(b'tampered')}, but runc 1.3.6 is pinned to sha256 {sha(b'the real runc')}" in report.errors[0]
    states = {i.name: s for i, s in store.status(tmp_path / "c", items)}
    assert states == {"containerd": "present", "kubeadm": "present", "runc": "missing"}
    assert not list((tmp_path / "c").rglob("*.part"))


def test_fetch_only_downloads_what_is_missing(server: str, tmp_path: Path) -> None:
    items = cache_manifest.plan(manifest(server, tmp_path), VERSIONS, [])[:1]
    cache_fetch.fetch(tmp_path / "c", items)
    RangeHandler.log.clear()
    cache_fetch.fetch(tmp_path / "c", items)
    assert RangeHandler.log == []


def test_fetch_resumes_a_partial_download(server: str, tmp_path: Path) -> None:
    item = cache_manifest.plan(manifest(server, tmp_path), VERSIONS, [])[0]
    target = tmp_path / "c" / item.relpath()
    target.parent.mkdir(parents=True)
    target.with_name(f".{target.name}.amd64.part").write_bytes(PAYLOAD[:300_000])
    assert cache_fetch.fetch(tmp_path / "c", [item]).errors == []
    assert RangeHandler.log == [("/c/containerd-2.3.4-linux-amd64.tar.gz", "bytes=300000-")]
    assert target.read_bytes() == PAYLOAD


def test_corrupt_artifact_is_reported_and_blocks_provisioning(server: str, tmp_path: Path) -> None:
    item = cache_manifest.plan(manifest(server, tmp_path), VERSIONS, [])[0]
    cache_fetch.fetch(tmp_path / "c", [item])
    path = tmp_path / "c" / item.relpath()
    path.write_bytes(PAYLOAD[:-1] + b"X")
    assert store.status(tmp_path / "c", [item]) == [(item, "corrupt")]
    with pytest.raises(KitError, match=r"containerd 2\.3\.4 \(amd64\): corrupt .*cache\.fetch"):
        store.require_complete(tmp_path / "c", [item])
    assert cache_fetch.fetch(tmp_path / "c", [item]).errors == []  # a corrupt file is fetched again
    assert store.status(tmp_path / "c", [item]) == [(item, "present")]


def test_add_places_a_file_by_its_checksum(server: str, tmp_path: Path) -> None:
    items = cache_manifest.plan(manifest(server, tmp_path), VERSIONS, ["kubernetes"])
    f = tmp_path / "downloaded-elsewhere"
    f.write_bytes(OTHER)
    assert store.add(tmp_path / "c", items, f).name == "kubeadm"
    assert (tmp_path / "c" / "files/kubeadm/1.36.4/amd64/kubeadm").read_bytes() == OTHER


def test_add_refuses_a_file_with_the_wrong_checksum(server: str, tmp_path: Path) -> None:
    items = cache_manifest.plan(manifest(server, tmp_path), VERSIONS, ["kubernetes"])
    f = tmp_path / "kubeadm"
    f.write_bytes(b"not kubeadm")
    with pytest.raises(KitError, match=r"kubeadm does not match the pinned checksum of kubeadm 1\.36\.4"):
        store.add(tmp_path / "c", items, f)


def test_manifest_rejects_a_malformed_checksum(tmp_path: Path) -> None:
    path = tmp_path / "m.yml"
    path.write_text(
        yaml.safe_dump({"artifacts": {"x": {"kind": "file", "layer": "node", "version": "1", "versions": {"1": {"amd64": {"url": "https://e.test/x", "sha256": "abc"}}}}}})
    )
    with pytest.raises(KitError, match=r"artifacts\.x\.versions\.1\.amd64\.sha256"):
        cache_manifest.load_manifest([path])


def test_plan_takes_addon_artifacts_only_when_the_addon_is_on(tmp_path: Path) -> None:
    path = tmp_path / "m.yml"
    path.write_text(
        "artifacts:\n"
        '  chart:\n    kind: manifest\n    layer: kubernetes\n    addon: dashboard\n    version: "1"\n    versions:\n      "1":\n'
        f'        all: {{url: "https://example.invalid/c.tgz", sha256: "{"a" * 64}"}}\n'
    )
    m = cache_manifest.load_manifest([path])
    assert cache_manifest.plan(m, VERSIONS, ["kubernetes"]) == []
    assert [i.name for i in cache_manifest.plan(m, VERSIONS, ["kubernetes"], addons=["dashboard"])] == ["chart"]
    assert cache_manifest.plan(m, VERSIONS, [], addons=["dashboard"]) == []


def test_shipped_manifest_is_valid_and_covers_the_config_versions() -> None:
    from labkit.cluster.config import load
    from labkit.cluster.resolved import HostContext

    root = Path(__file__).resolve().parents[3]
    resolved = load(root / "sandbox.yml", HostContext())
    m = cache_manifest.load_manifest([paths.MANIFEST])
    for name, art in m.artifacts.items():
        version = resolved.config.versions.model_dump().get(art.version_key) if art.version_key else art.version
        assert version in art.versions, f"{name}: no entry for {version}"
        assert set(art.versions[version]) >= {"amd64", "arm64"} or "all" in art.versions[version], name
