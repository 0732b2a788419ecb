"""A content-addressed OCI image store inside the artifact cache, and a small image builder.

Layout (served read-only by ``labkit.cache.serve`` under /v2/): ``oci/blobs/sha256/<hex>``
for manifests, configs and layers; ``oci/tags/<repository>/<tag>`` holding a manifest
digest.  Digest-pinned references resolve from the blobs alone.

A tag names one image per architecture: when a cache holds a tag for amd64 *and* arm64
(an instructor preparing mixed laptops), ``tag()`` points it at an image index of its
own that lists both, so containerd on each node picks its own image.

``build_image`` makes a single-layer image from files (used for CI's stand-in image and
for images the kit builds itself); the layer tar is reproducible (fixed owners and
times), so the same files give the same digest.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import tarfile
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

MANIFEST_TYPE = "application/vnd.oci.image.manifest.v1+json"
CONFIG_TYPE = "application/vnd.oci.image.config.v1+json"
LAYER_TYPE = "application/vnd.oci.image.layer.v1.tar+gzip"
INDEX_TYPE = "application/vnd.oci.image.index.v1+json"


@dataclass(frozen=True)
class Entry:
    """One file of a layer: its bytes (or a symlink target) and mode."""

    data: bytes = b""
    mode: int = 0o644
    symlink: str | None = None


def _put(store: Path, data: bytes) -> str:
    digest = hashlib.sha256(data).hexdigest()
    path = store / "blobs" / "sha256" / digest
    if not path.exists():
        write_atomic(path, data)
    return f"sha256:{digest}"


def sha256_file(path: Path) -> str:
    """The sha256 (hex) of a file, read in chunks: the one file hash of the kit."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def write_atomic(path: Path, data: bytes) -> None:
    """Write through a temporary name of this process and thread, then rename: workers
    that fetch the same blob at once never write into each other's file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.part")
    tmp.write_bytes(data)
    tmp.replace(path)


def _layer(files: Mapping[str, Entry]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        dirs = sorted({str(Path(name).parent) for name in files if str(Path(name).parent) != "."})
        for d in dirs:
            info = tarfile.TarInfo(d)
            info.type, info.mode, info.mtime = tarfile.DIRTYPE, 0o755, 0
            tar.addfile(info)
        for name, entry in sorted(files.items()):
            info = tarfile.TarInfo(name)
            info.mtime = 0
            if entry.symlink is not None:
                info.type, info.linkname, info.mode = tarfile.SYMTYPE, entry.symlink, 0o777
                tar.addfile(info)
            else:
                info.size, info.mode = len(entry.data), entry.mode
                tar.addfile(info, io.BytesIO(entry.data))
    return buf.getvalue()


def build_image(store: Path, repository: str, tag: str, files: Mapping[str, Entry], cmd: list[str], arch: str = "amd64", env: Sequence[str] = ()) -> str:
    """Write a one-layer image into ``store`` and tag it; return the manifest digest."""
    raw = _layer(files)
    compressed = gzip.compress(raw, mtime=0)
    layer_digest = _put(store, compressed)
    config = {
        "architecture": arch,
        "os": "linux",
        "config": {"Cmd": cmd, "Env": ["PATH=/bin:/usr/bin", *env]},
        "rootfs": {"type": "layers", "diff_ids": [f"sha256:{hashlib.sha256(raw).hexdigest()}"]},
    }
    config_bytes = json.dumps(config, sort_keys=True, separators=(",", ":")).encode()
    config_digest = _put(store, config_bytes)
    manifest = {
        "schemaVersion": 2,
        "mediaType": MANIFEST_TYPE,
        "config": {"mediaType": CONFIG_TYPE, "digest": config_digest, "size": len(config_bytes)},
        "layers": [{"mediaType": LAYER_TYPE, "digest": layer_digest, "size": len(compressed)}],
    }
    manifest_bytes = json.dumps(manifest, sort_keys=True, separators=(",", ":")).encode()
    digest = _put(store, manifest_bytes)
    tag_image(store, repository, tag, digest, arch)
    return digest


def platform_manifest(index: Mapping[str, object], arch: str | None) -> str | None:
    """The digest of the linux/``arch`` image an image index lists (None: not listed)."""
    for m in index.get("manifests", []):  # type: ignore[union-attr]
        platform = m.get("platform", {})
        if platform.get("os") == "linux" and platform.get("architecture") == arch:
            return str(m["digest"])
    return None


def missing_blobs(store: Path, manifest_digest: str, arch: str | None = None) -> list[str]:
    """Blobs a stored manifest (or, for an index, its ``arch`` image) refers to that are
    absent or do not match their digest."""
    path = store / "blobs" / "sha256" / manifest_digest.removeprefix("sha256:")
    if not path.is_file() or f"sha256:{sha256_file(path)}" != manifest_digest:
        return [manifest_digest]
    manifest = json.loads(path.read_bytes())
    if "manifests" in manifest:
        chosen = platform_manifest(manifest, arch)
        return missing_blobs(store, chosen, arch) if chosen else [f"{manifest_digest} (no {arch} image)"]
    refs = [manifest["config"]["digest"], *(layer["digest"] for layer in manifest.get("layers", []))]
    bad = []
    for ref in refs:
        blob = store / "blobs" / "sha256" / ref.removeprefix("sha256:")
        if not blob.is_file() or f"sha256:{sha256_file(blob)}" != ref:
            bad.append(ref)
    return bad


_TAG_MUTEX = threading.Lock()


def _blob(store: Path, digest: str) -> bytes | None:
    path = store / "blobs" / "sha256" / digest.removeprefix("sha256:")
    return path.read_bytes() if path.is_file() else None


def image_arch(store: Path, manifest_digest: str) -> str | None:
    """The architecture of a stored image manifest (from its config blob)."""
    raw = _blob(store, manifest_digest)
    if raw is None:
        return None
    doc = json.loads(raw)
    config = _blob(store, doc.get("config", {}).get("digest", "")) if "config" in doc else None
    return json.loads(config).get("architecture") if config else None


def tag_image(store: Path, repository: str, tag: str, digest: str, arch: str) -> None:
    """Point ``repository:tag`` at ``digest`` for ``arch``, keeping the other architectures'
    images the tag already names (through an image index when there are several)."""
    tag_file = store / "tags" / repository / tag
    with _TAG_MUTEX:
        per_arch: dict[str, dict[str, object]] = {}
        current = tag_file.read_text().strip() if tag_file.is_file() else ""
        raw = _blob(store, current) if current else None
        if raw is not None:
            doc = json.loads(raw)
            if "manifests" in doc:
                for m in doc["manifests"]:
                    per_arch[m.get("platform", {}).get("architecture", "")] = m
            else:
                other = image_arch(store, current)
                if other:
                    per_arch[other] = {"mediaType": doc.get("mediaType", MANIFEST_TYPE), "digest": current, "size": len(raw)}
        body = _blob(store, digest)
        media = json.loads(body).get("mediaType", MANIFEST_TYPE) if body else MANIFEST_TYPE
        per_arch[arch] = {"mediaType": media, "digest": digest, "size": len(body or b"")}
        if len(per_arch) == 1:
            target = digest
        else:
            index = {
                "schemaVersion": 2,
                "mediaType": INDEX_TYPE,
                "manifests": [{**m, "platform": {"architecture": a, "os": "linux"}} for a, m in sorted(per_arch.items())],
            }
            target = _put(store, json.dumps(index, sort_keys=True, separators=(",", ":")).encode())
        write_atomic(tag_file, (target + "\n").encode())


def resolve_tag(store: Path, repository: str, tag: str, arch: str) -> str | None:
    """The image manifest a node of ``arch`` gets when it asks for ``repository:tag``."""
    tag_file = store / "tags" / repository / tag
    if not tag_file.is_file():
        return None
    digest = tag_file.read_text().strip()
    raw = _blob(store, digest)
    if raw is None:
        return None
    doc = json.loads(raw)
    if "manifests" in doc:
        return platform_manifest(doc, arch)
    return digest if image_arch(store, digest) in (arch, None) else None
