"""The cache as one cluster uses it: what its layers need, fetched, verified, before any
node changes. Plain functions over a ``Kit`` (one config, one state folder).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from labkit import paths
from labkit.cache import fetch as cache_fetch
from labkit.cache import manifest as cache_manifest
from labkit.cache import store
from labkit.cache.lock import Lock
from labkit.cluster import host
from labkit.errors import KitError
from labkit.labs import samples

if TYPE_CHECKING:
    from labkit.cluster.kit import Kit


def cache_items(k: Kit, arches: Sequence[str] | None = None, *, locked: bool = False) -> list[cache_manifest.Item]:
    """What the enabled layers need from the cache, for the nodes' architecture (or
    ``arches``), each with its pin (the repository's, else the cache's lock)."""
    resolved = k.resolve()
    manifest = cache_manifest.load_manifest([paths.MANIFEST, paths.DEBS_MANIFEST, *resolved.overlays])
    versions = resolved.config.versions.model_dump()
    lock = Lock(resolved.cache_dir)
    items: list[cache_manifest.Item] = []
    for arch in arches or [host.arch()]:
        addons = [name for name, on in resolved.config.addons.model_dump().items() if on]
        items += cache_manifest.plan(manifest, versions, [*resolved.enabled_layers(), "labs"], arch, addons=addons, lock=lock, locked=locked)
    return items


def kit_vars(k: Kit) -> dict[str, Any]:
    """What the roles get from the cache side of the contract: `kit.artifacts` (each release
    file the enabled layers need: cache path, sha256, version) and `kit.images` (every
    image's reference at the configured versions)."""
    resolved = k.resolve()
    manifest = cache_manifest.load_manifest([paths.MANIFEST, paths.DEBS_MANIFEST, *resolved.overlays])
    return {"artifacts": cache_manifest.role_vars(cache_items(k)), "images": cache_manifest.image_refs(manifest, resolved.config.versions.model_dump())}


def fetch(k: Kit, arches: Sequence[str] | None = None, *, locked: bool = False, jobs: int = 4) -> cache_fetch.FetchReport:
    """Fetch what the cache lacks for the config, pinning on first fetch; stop with every
    error at the end (nothing half-written: each file lands only once verified)."""
    from labkit.cache.debs import MovedDebs

    resolved = k.resolve()
    items = cache_items(k, arches, locked=locked)
    states = store.status(resolved.cache_dir, items)
    todo = [i for i, st in states if st != "present"]
    classroom = resolved.config.classroom
    if todo and classroom is not None and not locked:
        from labkit.classroom import client

        adopted = client.adopt_lock(classroom, resolved.cache_dir)
        k.say(f"    filling the cache from the class server {classroom.url} ({adopted} new pin(s) from its lock; every byte is verified against them)")
        items = cache_items(k, arches)
        states = store.status(resolved.cache_dir, items)
        todo = [i for i, st in states if st != "present"]
    if not todo:
        k.say(f"    all {len(items)} artifact(s) already in the cache, verified: nothing to fetch")
        return cache_fetch.FetchReport([cache_fetch.Outcome(i, "present", pin=i.pin) for i in items], [])
    k.say(f"    fetching {len(todo)} of {len(items)} artifact(s) into {resolved.cache_dir}")
    moved = MovedDebs(resolved.config.box.suite, resolved.apt_keyring, say=k.say)
    with k.reporter(todo) as reporter:
        report = cache_fetch.fetch(resolved.cache_dir, items, jobs=jobs, mirrors=k.mirrors(), lock=Lock(resolved.cache_dir), reporter=reporter, moved=moved, states=states)
    for line in report.summary():
        k.say(f"    {line}")
    if report.errors:
        raise KitError("some artifacts could not be fetched (what was fetched is kept; run the same command again):\n" + "\n".join(f"  - {e}" for e in report.errors))
    return report


def verify(k: Kit, *, locked: bool = False) -> list[cache_manifest.Item]:
    """Refuse to go on when an artifact the layers need is missing or corrupt."""
    items = cache_items(k, locked=locked)
    cache_dir = k.resolve().cache_dir
    store.require_complete(cache_dir, items)
    k.say(f"    all {len(items)} artifact(s) present and verified in {cache_dir}")
    return items


def ensure_samples(k: Kit) -> None:
    """Build the labs' sample images into the cache when it lacks them (the kit's own)."""
    cache_dir = k.resolve().cache_dir
    if not samples.present(cache_dir):
        k.say("    building the labs' sample images (labs/samples) into the cache")
        samples.build(cache_dir, host.arch(), say=k.say)


def custom_resource_schemas(k: Kit) -> Any:
    """Istio's and Knative's CRDs from the cache, to check custom resources offline."""
    from labkit.cache import crds

    resolved = k.resolve()
    manifest = cache_manifest.load_manifest([paths.MANIFEST, *resolved.overlays])
    return crds.from_cache(resolved.cache_dir, manifest, resolved.config.versions.model_dump())


def loose_images(k: Kit) -> list[str]:
    """Release manifests in the cache that run images labkit/artifacts.yml does not pin."""
    from labkit.cache import pin

    manifest = cache_manifest.load_manifest([paths.MANIFEST])
    cache_dir = k.resolve().cache_dir
    errors = []
    for item, state in store.status(cache_dir, cache_items(k)):
        if state == "present" and item.kind == "manifest" and item.url.endswith((".yaml", ".yml")):
            loose = pin.unpinned_images((cache_dir / item.relpath()).read_text(), manifest)
            if loose:
                errors.append(f"{item.name} {item.version}: runs images labkit/artifacts.yml does not pin: {', '.join(loose)} (add them as image artifacts and to the role's list)")
    return errors
