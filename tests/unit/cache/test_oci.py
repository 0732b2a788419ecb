"""The cache's OCI store and its read-only registry endpoint, pulled over loopback."""

from __future__ import annotations

import hashlib
import json
import socket
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from labkit.cache import fetch, oci, serve
from labkit.cache import manifest as cache_manifest
from labkit.cache import store as cache_store

FILES = {"bin/hello": oci.Entry(b"#!/bin/sh\necho hello\n", 0o755), "bin/sh": oci.Entry(symlink="hello")}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get(url: str, method: str = "GET") -> tuple[int, dict[str, str], bytes]:
    req = urllib.request.Request(url, method=method)  # noqa: S310 - loopback test server
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:  # noqa: S310 - loopback test server
            return resp.status, dict(resp.headers), resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


def test_images_are_reproducible(tmp_path: Path) -> None:
    a = oci.build_image(tmp_path / "a", "labkit.local/t/hello", "1", FILES, ["/bin/hello"])
    b = oci.build_image(tmp_path / "b", "labkit.local/t/hello", "1", FILES, ["/bin/hello"])
    assert a == b
    assert (tmp_path / "a/tags/labkit.local/t/hello/1").read_text().strip() == a


def test_registry_serves_manifests_by_tag_and_digest_and_blobs(tmp_path: Path) -> None:
    store = tmp_path / "cache" / "oci"
    digest = oci.build_image(store, "labkit.local/t/hello", "1", FILES, ["/bin/hello"])
    port = free_port()
    with serve.serving(tmp_path / "cache", "127.0.0.1", port) as url:
        status, headers, _ = get(f"{url}/v2/")
        assert status == 200 and headers["Docker-Distribution-API-Version"] == "registry/2.0"
        # As a mirror: the repository without its registry, the registry in ?ns=.
        status, headers, body = get(f"{url}/v2/t/hello/manifests/1?ns=labkit.local")
        assert status == 200
        assert get(f"{url}/v2/t/hello/manifests/1?ns=docker.io")[0] == 404
        # As a registry of its own: the full name in the path.
        assert get(f"{url}/v2/labkit.local/t/hello/manifests/1")[0] == 200
        assert headers["Docker-Content-Digest"] == digest
        assert headers["Content-Type"] == oci.MANIFEST_TYPE
        assert f"sha256:{hashlib.sha256(body).hexdigest()}" == digest
        layer = json.loads(body)["layers"][0]["digest"]
        # A digest-pinned reference resolves under any repository name.
        status, headers, _ = get(f"{url}/v2/other/name/manifests/{digest}", method="HEAD")
        assert status == 200 and headers["Content-Length"] == str(len(body))
        status, _, blob = get(f"{url}/v2/labkit.local/t/hello/blobs/{layer}")
        assert status == 200 and f"sha256:{hashlib.sha256(blob).hexdigest()}" == layer
        assert get(f"{url}/v2/labkit.local/t/hello/manifests/2")[0] == 404
        assert get(f"{url}/v2/labkit.local/t/hello/blobs/sha256:{'0' * 64}")[0] == 404
        assert get(f"{url}/v2/../../etc/manifests/1")[0] == 404
        assert get(f"{url}/v2/t/hello/manifests/1?ns=../../x")[0] == 404


def test_cache_status_checks_every_blob_of_an_image(tmp_path: Path) -> None:
    cache_dir = tmp_path / "cache"
    digest = oci.build_image(cache_dir / "oci", "labkit.local/t/hello", "1", FILES, ["/bin/hello"])
    item = cache_manifest.Item("hello", "1", "amd64", "image", "oci://labkit.local/t/hello:1", digest.removeprefix("sha256:"), True)
    assert cache_store.state_of(cache_dir, item) == "present"
    manifest = json.loads((cache_dir / item.relpath()).read_bytes())
    layer = cache_dir / "oci/blobs/sha256" / manifest["layers"][0]["digest"].removeprefix("sha256:")
    layer.write_bytes(b"tampered")
    assert cache_store.state_of(cache_dir, item) == "corrupt"
    assert cache_manifest.role_vars([item])["hello"]["ref"] == "labkit.local/t/hello:1"


def test_a_locally_built_image_that_is_missing_is_refused_with_a_reason(tmp_path: Path) -> None:
    item = cache_manifest.Item("hello", "1", "amd64", "image", "oci://labkit.local/t/hello:1", "a" * 64, True)
    errors = fetch.fetch(tmp_path, [item]).errors
    assert errors == [f"hello: {cache_store.how_to_get(item)}"]
    assert "cache.samples" in errors[0]


@pytest.mark.parametrize("name", ["bin/hello", "bin/sh"])
def test_layer_holds_the_files(tmp_path: Path, name: str) -> None:
    import gzip
    import io
    import tarfile

    digest = oci.build_image(tmp_path, "r", "1", FILES, ["/bin/hello"])
    manifest = json.loads((tmp_path / "blobs/sha256" / digest.removeprefix("sha256:")).read_bytes())
    layer = (tmp_path / "blobs/sha256" / manifest["layers"][0]["digest"].removeprefix("sha256:")).read_bytes()
    with tarfile.open(fileobj=io.BytesIO(gzip.decompress(layer))) as tar:
        assert name in tar.getnames()
