"""Pinning and pulling images against a registry on loopback (a test double of a real one).

The server speaks the parts of the distribution protocol upstream registries use: an
anonymous bearer token announced in WWW-Authenticate, a multi-architecture index, and
blobs redirected to an "object store" that rejects requests still carrying the token.
"""

from __future__ import annotations

import hashlib
import http.server
import json
import threading
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

import pytest

from labkit.cache import fetch, oci, pin
from labkit.cache import manifest as cache_manifest
from labkit.cache import store as cache_store
from labkit.cache.lock import Lock
from labkit.cache.registry import ImageRef, RegistryClient, digest_refs
from labkit.cache.trust import Mirrors
from labkit.errors import KitError

INDEX = "application/vnd.oci.image.index.v1+json"
MANIFEST = "application/vnd.oci.image.manifest.v1+json"


def digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


class Registry(http.server.BaseHTTPRequestHandler):
    blobs: ClassVar[dict[str, bytes]] = {}
    manifests: ClassVar[dict[tuple[str, str], tuple[bytes, str]]] = {}
    token_requests: ClassVar[list[str]] = []

    def log_message(self, *args: object) -> None:
        pass

    def _send(self, code: int, body: bytes = b"", headers: dict[str, str] | None = None) -> None:
        self.send_response(code)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        url = urllib.parse.urlsplit(self.path)
        port = self.server.server_address[1]
        if url.path == "/token":
            self.token_requests.append(url.query)
            return self._send(200, json.dumps({"token": "good-token"}).encode())
        if url.path.startswith("/cdn/"):  # an object store: a second credential is an error
            if self.headers.get("Authorization"):
                return self._send(400, b"only one auth mechanism allowed")
            return self._send(200, self.blobs[url.path[5:]])
        repo, _, rest = url.path.removeprefix("/v2/").partition("/manifests/")
        if self.headers.get("Authorization") != "Bearer good-token":
            scope = f"repository:{repo or url.path.removeprefix('/v2/').split('/blobs/')[0]}:pull"
            return self._send(401, b"", {"WWW-Authenticate": f'Bearer realm="http://127.0.0.1:{port}/token",service="test",scope="{scope}"'})
        if rest:
            body, media = self.manifests.get((repo, rest), (None, ""))
            return self._send(200, body, {"Content-Type": media}) if body is not None else self._send(404)
        repo, _, blob = url.path.removeprefix("/v2/").partition("/blobs/")
        if blob in self.blobs:
            return self._send(307, b"", {"Location": f"/cdn/{blob}"})
        return self._send(404)


def add_image(repo: str, tag: str) -> dict[str, str]:
    """A two-architecture image; returns each architecture's manifest digest."""
    per_arch = {}
    entries = []
    for arch in ("amd64", "arm64"):
        layer = f"layer of {arch}".encode()
        config = json.dumps({"architecture": arch, "os": "linux"}).encode()
        Registry.blobs[digest(layer)] = layer
        Registry.blobs[digest(config)] = config
        manifest = json.dumps(
            {"schemaVersion": 2, "mediaType": MANIFEST, "config": {"digest": digest(config), "size": len(config)}, "layers": [{"digest": digest(layer), "size": len(layer)}]}
        ).encode()
        Registry.manifests[(repo, digest(manifest))] = (manifest, MANIFEST)
        per_arch[arch] = digest(manifest)
        entries.append({"mediaType": MANIFEST, "digest": digest(manifest), "size": len(manifest), "platform": {"os": "linux", "architecture": arch}})
    index = json.dumps({"schemaVersion": 2, "mediaType": INDEX, "manifests": entries}).encode()
    Registry.manifests[(repo, tag)] = (index, INDEX)
    return per_arch


@pytest.fixture
def registry() -> Iterator[RegistryClient]:
    Registry.blobs, Registry.manifests, Registry.token_requests = {}, {}, []
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Registry)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield RegistryClient(endpoints={"registry.test": f"http://127.0.0.1:{httpd.server_address[1]}"}, timeout=10)
    httpd.shutdown()


@pytest.mark.parametrize(
    ("ref", "expected"),
    [
        ("busybox:1.37.0", ImageRef("docker.io", "library/busybox", "1.37.0")),
        ("docker://docker.io/busybox:1.37.0", ImageRef("docker.io", "library/busybox", "1.37.0")),
        ("rancher/local-path-provisioner:v0.0.37", ImageRef("docker.io", "rancher/local-path-provisioner", "v0.0.37")),
        ("registry.k8s.io/coredns/coredns:v1.14.2", ImageRef("registry.k8s.io", "coredns/coredns", "v1.14.2")),
        ("localhost:5000/x", ImageRef("localhost:5000", "x", "latest")),
    ],
)
def test_references_are_parsed_like_containerd_does(ref: str, expected: ImageRef) -> None:
    assert ImageRef.parse(ref) == expected


def test_pin_resolves_each_architectures_manifest_through_a_bearer_token(registry: RegistryClient) -> None:
    digests = add_image("team/app", "v1")
    ref = ImageRef.parse("registry.test/team/app:v1")
    assert registry.platform_digest(ref, "amd64") == digests["amd64"]
    assert registry.platform_digest(ref, "arm64") == digests["arm64"]
    assert Registry.token_requests == ["scope=repository%3Ateam%2Fapp%3Apull&service=test"]  # one token, reused
    with pytest.raises(KitError, match="no linux/riscv64 image"):
        registry.platform_digest(ref, "riscv64")


def test_pull_stores_verified_blobs_and_tags_them_for_the_mirror(registry: RegistryClient, tmp_path: Path) -> None:
    digests = add_image("team/app", "v1")
    store = tmp_path / "oci"
    registry.pull(ImageRef.parse("registry.test/team/app:v1"), digests["amd64"], store)
    assert (store / "tags/registry.test/team/app/v1").read_text().strip() == digests["amd64"]
    assert oci.missing_blobs(store, digests["amd64"]) == []


def test_a_tampered_blob_is_refused_and_not_stored(registry: RegistryClient, tmp_path: Path) -> None:
    digests = add_image("team/app", "v1")
    layer = digest(b"layer of amd64")
    Registry.blobs[layer] = b"tampered"
    with pytest.raises(KitError, match="not the pinned"):
        registry.pull(ImageRef.parse("registry.test/team/app:v1"), digests["amd64"], tmp_path / "oci")
    assert not (tmp_path / "oci/blobs/sha256" / layer.removeprefix("sha256:")).exists()
    assert not (tmp_path / "oci/tags/registry.test/team/app/v1").exists()


def test_first_fetch_pins_each_architecture_and_cache_pin_writes_the_lock(registry: RegistryClient, tmp_path: Path) -> None:
    """Both architectures from one tag: each pinned from the registry's digest of its own
    manifest, the tag in the cache an index of both (each node gets its own), and
    `cache.pin` turns the lock into the repository's pins."""
    digests = add_image("team/app", "v1")
    path = tmp_path / "m.yml"
    path.write_text(
        'artifacts:\n  image-app:\n    kind: image\n    layer: node\n    version: "1"\n    versions:\n      "1":\n'
        '        amd64: {url: "docker://registry.test/team/app:v1", sha256: null}\n'
        '        arm64: {url: "docker://registry.test/team/app:v1", sha256: null}\n'
    )
    cache_dir = tmp_path / "c"
    lock = Lock(cache_dir)
    m = cache_manifest.load_manifest([path])
    items = [i for arch in ("amd64", "arm64") for i in cache_manifest.plan(m, {}, [], arch=arch, lock=lock)]
    assert all(i.sha256 is None for i in items)
    report = fetch.fetch(cache_dir, items, mirrors=Mirrors(registries=registry.endpoints), lock=lock, jobs=2)
    assert report.errors == []
    assert {o.item.arch: o.pin.source for o in report.outcomes if o.pin} == {"amd64": "registry", "arm64": "registry"}
    items = [i for arch in ("amd64", "arm64") for i in cache_manifest.plan(m, {}, [], arch=arch, lock=Lock(cache_dir))]
    assert {i.arch: f"sha256:{i.sha256}" for i in items} == digests
    assert [s for _, s in cache_store.status(cache_dir, items)] == ["present", "present"]
    for arch in ("amd64", "arm64"):
        assert oci.resolve_tag(cache_dir / "oci", "registry.test/team/app", "v1", arch) == digests[arch]
    written, errors = pin.pin_from_lock(path, Lock(cache_dir), say=lambda _: None)
    assert (written, errors) == (2, [])
    m = cache_manifest.load_manifest([path])
    assert {a: d.sha256 for a, d in m.artifacts["image-app"].versions["1"].items()} == {a: d.removeprefix("sha256:") for a, d in digests.items()}


def test_an_image_whose_tag_gives_another_architecture_is_not_present(registry: RegistryClient, tmp_path: Path) -> None:
    digests = add_image("team/app", "v1")
    store = tmp_path / "c" / "oci"
    registry.pull(ImageRef.parse("registry.test/team/app:v1"), digests["arm64"], store, arch="arm64")
    item = cache_manifest.Item("app", "1", "amd64", "image", "docker://registry.test/team/app:v1", digests["amd64"].removeprefix("sha256:"), False)
    registry.pull(ImageRef.parse("registry.test/team/app:v1"), digests["amd64"], store, arch="amd64")
    assert cache_store.state_of(tmp_path / "c", item) == "present"
    (store / "tags/registry.test/team/app/v1").write_text(digests["arm64"] + "\n")  # the tag names only arm64's image
    assert cache_store.state_of(tmp_path / "c", item) == "missing"


def test_digest_references_are_found_wherever_a_manifest_names_them() -> None:
    d1, d2 = "sha256:" + "1" * 64, "sha256:" + "2" * 64
    text = f"""
kind: Deployment
spec: {{template: {{spec: {{containers: [{{name: c, image: gcr.io/knative-releases/knative.dev/serving/cmd/controller@{d1}}}]}}}}}}
---
kind: ConfigMap
data:
  queue-sidecar-image: gcr.io/knative-releases/knative.dev/serving/cmd/queue@{d2}
  again: gcr.io/knative-releases/knative.dev/serving/cmd/controller@{d1}
"""
    assert digest_refs(text) == [f"gcr.io/knative-releases/knative.dev/serving/cmd/controller@{d1}", f"gcr.io/knative-releases/knative.dev/serving/cmd/queue@{d2}"]
    ref = ImageRef.parse(digest_refs(text)[0])
    assert (ref.registry, ref.repository, ref.digest) == ("gcr.io", "knative-releases/knative.dev/serving/cmd/controller", d1)


def test_a_manifest_that_pins_images_is_complete_only_with_them(registry: RegistryClient, tmp_path: Path) -> None:
    add_image("knative/controller", "v1")
    index_digest = digest(Registry.manifests[("knative/controller", "v1")][0])
    Registry.manifests[("knative/controller", index_digest)] = Registry.manifests[("knative/controller", "v1")]
    manifest = f"kind: Deployment\nspec: {{image: registry.test/knative/controller@{index_digest}}}\n".encode()
    path = tmp_path / "m.yml"
    path.write_text(
        'artifacts:\n  serving:\n    kind: manifest\n    layer: node\n    pulls_images: true\n    version: "1"\n    versions:\n      "1":\n'
        f'        all: {{url: "file://{tmp_path}/serving-core.yaml", sha256: "{digest(manifest).removeprefix("sha256:")}"}}\n'
    )
    items = cache_manifest.plan(cache_manifest.load_manifest([path]), {}, [], arch="arm64")
    cache_dir = tmp_path / "c"
    target = cache_dir / items[0].relpath()
    target.parent.mkdir(parents=True)
    target.write_bytes(manifest)  # the file is in the cache ...
    assert cache_store.status(cache_dir, items)[0][1] == "missing"  # ... but not the image it pins
    assert fetch.fetch(cache_dir, items, mirrors=Mirrors(registries=registry.endpoints)).errors == []
    assert cache_store.status(cache_dir, items)[0][1] == "present"
    arm = json.loads(Registry.manifests[("knative/controller", "v1")][0])["manifests"][1]["digest"]
    assert oci.missing_blobs(cache_dir / "oci", index_digest, "arm64") == []
    assert (cache_dir / "oci/blobs/sha256" / arm.removeprefix("sha256:")).exists()


@pytest.mark.parametrize(
    ("endpoints", "ref", "url"),
    [
        ({}, "busybox:1.37.0", "https://registry-1.docker.io/v2/library/busybox/manifests/1.37.0"),
        ({}, "registry.k8s.io/pause:3.10.2", "https://registry.k8s.io/v2/pause/manifests/3.10.2"),
        ({"docker.io": "https://harbor.example/dockerhub-proxy"}, "busybox:1.37.0", "https://harbor.example/v2/dockerhub-proxy/library/busybox/manifests/1.37.0"),
        ({"registry.k8s.io": "http://127.0.0.1:8791/"}, "registry.k8s.io/pause:3.10.2", "http://127.0.0.1:8791/v2/pause/manifests/3.10.2"),
    ],
)
def test_a_registry_mirror_with_a_path_prefixes_the_repository(endpoints: dict[str, str], ref: str, url: str) -> None:
    assert RegistryClient(endpoints=endpoints)._url(ImageRef.parse(ref), "manifests/" + ImageRef.parse(ref).tag) == url
