"""The cache on disk: what is present, missing or corrupt; ``require_complete()`` stops
provisioning before any node changes; ``add()`` puts a file obtained another way in
its place after checking its checksum.
"""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

from labkit.cache.manifest import Item
from labkit.cache.oci import missing_blobs, resolve_tag
from labkit.cache.oci import sha256_file as sha256_of
from labkit.cache.registry import ImageRef, digest_refs
from labkit.errors import KitError

State = Literal["present", "missing", "corrupt"]


def state_of(cache_dir: Path, item: Item) -> State:
    if item.sha256 is None:
        return "missing"  # nothing to verify against until its first fetch pins it
    path = cache_dir / item.relpath()
    if not path.exists():
        return "missing"
    if sha256_of(path) != item.sha256:
        return "corrupt"
    if item.kind == "image":
        if missing_blobs(cache_dir / "oci", f"sha256:{item.sha256}"):
            return "corrupt"
        ref = ImageRef.parse(item.url)
        if item.url.startswith("docker://") and resolve_tag(cache_dir / "oci", f"{ref.registry}/{ref.repository}", ref.tag, item.arch) != f"sha256:{item.sha256}":
            return "missing"  # the tag the nodes ask for does not give them the pinned image
        return "present"
    if item.pulls_images:
        for ref_text in digest_refs(path.read_text()):
            if missing_blobs(cache_dir / "oci", str(ImageRef.parse(ref_text).digest), item.arch):
                return "missing"  # the file is there, not yet every image it pins
    return "present"


def status(cache_dir: Path, items: Sequence[Item]) -> list[tuple[Item, State]]:
    return [(item, state_of(cache_dir, item)) for item in items]


def how_to_get(item: Item) -> str:
    if item.kind == "image" and item.url.startswith("oci://"):
        return "built by the kit itself: `./kit cache.samples` (or `./kit cache.standins` in CI)"
    if item.kind == "image":
        return f"run `./kit cache.fetch` (it pulls {item.image_ref}" + (" by its pinned digest)" if item.sha256 else ", pinning the registry's digest)")
    return f"run `./kit cache.fetch` (or download {item.url} another way and `./kit cache.add FILE`)"


def require_complete(cache_dir: Path, items: Sequence[Item]) -> None:
    """Refuse to provision when anything is missing or corrupt (before any node changes)."""
    bad = [(item, st) for item, st in status(cache_dir, items) if st != "present"]
    if bad:
        rows = "\n".join(f"  - {item.name} {item.version} ({item.arch}): {st} at {cache_dir / item.relpath()}. Fix: {how_to_get(item)}" for item, st in bad)
        raise KitError(f"the artifact cache is incomplete, so nothing was provisioned:\n{rows}")


def add(cache_dir: Path, items: Sequence[Item], file: Path) -> Item:
    """Put ``file`` in the cache as the item whose checksum it has."""
    if not file.is_file():
        raise KitError(f"{file} is not a file")
    digest = sha256_of(file)
    for item in items:
        if item.sha256 == digest:
            target = cache_dir / item.relpath()
            target.parent.mkdir(parents=True, exist_ok=True)
            tmp = target.with_name(f".{target.name}.add")
            shutil.copyfile(file, tmp)
            tmp.replace(target)
            return item
    names = {i.filename: i for i in items}
    near = names.get(file.name)
    if near is not None and near.sha256 is None:
        raise KitError(f"{near.key} is not pinned yet, so a file from elsewhere cannot be checked: `./kit cache.fetch` pins it from upstream first")
    if near is not None:
        raise KitError(
            f"{file.name} does not match the pinned checksum of {near.name} {near.version} ({near.arch}): expected {near.sha256}, got {digest}. Download it again from {near.url}"
        )
    raise KitError(f"{file.name} (sha256 {digest}) matches no artifact the config needs; `./kit cache.status` lists them")
