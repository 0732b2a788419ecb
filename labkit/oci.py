"""A content-addressed OCI image store inside the artifact cache, and a small image builder.

Layout (served read-only by ``labkit.serve`` under /v2/): ``oci/blobs/sha256/<hex>``
for manifests, configs and layers; ``oci/tags/<repository>/<tag>`` holding a manifest
digest.  Digest-pinned references resolve from the blobs alone.

``build_image`` makes a single-layer image from files (used for CI's stand-in image and
for images the kit builds itself); the layer tar is reproducible (fixed owners and
times), so the same files give the same digest.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

MANIFEST_TYPE = "application/vnd.oci.image.manifest.v1+json"
CONFIG_TYPE = "application/vnd.oci.image.config.v1+json"
LAYER_TYPE = "application/vnd.oci.image.layer.v1.tar+gzip"


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
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_bytes(data)
        tmp.replace(path)
    return f"sha256:{digest}"


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
    tag_file = store / "tags" / repository / tag
    tag_file.parent.mkdir(parents=True, exist_ok=True)
    tag_file.write_text(digest + "\n")
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
    if not path.is_file() or f"sha256:{hashlib.sha256(path.read_bytes()).hexdigest()}" != manifest_digest:
        return [manifest_digest]
    manifest = json.loads(path.read_bytes())
    if "manifests" in manifest:
        chosen = platform_manifest(manifest, arch)
        return missing_blobs(store, chosen, arch) if chosen else [f"{manifest_digest} (no {arch} image)"]
    refs = [manifest["config"]["digest"], *(layer["digest"] for layer in manifest.get("layers", []))]
    bad = []
    for ref in refs:
        blob = store / "blobs" / "sha256" / ref.removeprefix("sha256:")
        if not blob.is_file() or f"sha256:{hashlib.sha256(blob.read_bytes()).hexdigest()}" != ref:
            bad.append(ref)
    return bad
