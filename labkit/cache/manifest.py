"""The artifact manifest and the plan: what the enabled layers need from the cache.

``labkit/artifacts.yml`` (the manifest) lists each artifact once: its kind, the layer
that needs it, and per version and architecture the upstream URL and sha256.  The
versions themselves are chosen in ``sandbox.yml`` (``version_key``) or fixed in the
manifest (``version``), so a version is written once and its checksum once.

An *overlay* manifest (same format) can add or replace entries; CI uses one for its
stand-ins built from Debian's packages (``labkit.dev.double``).  ``plan()`` lists what
the enabled layers need, each with its pin; ``role_vars()`` is what roles get as
``kit.artifacts`` and ``image_refs()`` what they get as ``kit.images``: the manifest is the
only place an image reference is written (the roles name the artifact, never the tag).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from labkit.cache.lock import Lock, Pin
from labkit.cache.lock import key as lock_key
from labkit.cache.registry import ImageRef
from labkit.errors import KitError

ARCHES = ("amd64", "arm64")
Kind = Literal["file", "archive", "deb", "manifest", "image"]
SHA256 = Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Download(_Strict):
    url: Annotated[str, Field(pattern=r"^(https?|file|docker|oci)://")]  # docker:// and oci:// are images
    sha256: SHA256 | None  # None: pinned on first fetch, in the cache's lock (labkit.cache.lock)
    checksum_url: str | None = None  # the checksum file upstream publishes beside it
    chart_index: str | None = None  # the Helm chart repository's index.yaml that lists it


class Artifact(_Strict):
    kind: Kind
    layer: Literal["node", "kubernetes", "istio", "knative", "labs"]
    description: str = ""
    version_key: str | None = None  # take the version from sandbox.yml's `versions`
    version: str | None = None  # or pin it here
    standin: bool = False  # built locally from Debian's packages (CI only), not upstream
    addon: str | None = None  # only needed when this switch of sandbox.yml's `addons` is on
    # A release manifest whose images are pinned by digest inside it (Knative): fetching it
    # also pulls those images, so the manifest's checksum pins them too.
    pulls_images: bool = False
    versions: dict[str, dict[Literal["amd64", "arm64", "all"], Download]]


class Manifest(_Strict):
    artifacts: dict[str, Artifact]


@dataclass(frozen=True)
class Item:
    """One file of one artifact for one architecture, and where it lives in the cache."""

    name: str
    version: str
    arch: str
    kind: str
    url: str  # upstream (a mirror only changes where it is read from)
    sha256: str | None  # None: not pinned anywhere yet, pinned on its first fetch
    standin: bool
    pulls_images: bool = False
    checksum_url: str | None = None
    chart_index: str | None = None
    pin: Pin | None = None  # where sha256 comes from (None: not pinned yet)
    pinned_version: str = ""  # a Debian package that moved on: the version the repository pins

    @property
    def filename(self) -> str:
        return self.url.rstrip("/").rsplit("/", 1)[-1]

    @property
    def image_ref(self) -> str:
        """For images: the reference without scheme (`registry/repository:tag`)."""
        return self.url.split("://", 1)[1]

    @property
    def key(self) -> str:
        return lock_key(self.name, self.pinned_version or self.version, self.arch)

    @property
    def trust(self) -> str:
        return self.pin.label() if self.pin else "not pinned yet (pinned on first fetch)"

    def relpath(self) -> Path:
        if self.kind == "image":
            if self.sha256 is None:
                ref = ImageRef.parse(self.url)
                return Path("oci/tags") / ref.registry / ref.repository / ref.tag
            return Path("oci/blobs/sha256") / self.sha256  # the manifest; its blobs beside it
        if self.kind == "deb":
            return Path("debs") / self.filename  # one flat apt repository
        return Path("files") / self.name / self.version / self.arch / self.filename


def load_manifest(paths: Sequence[Path]) -> Manifest:
    """Load the manifest and merge overlays over it (an overlay entry replaces the artifact)."""
    merged: dict[str, Any] = {}
    for path in paths:
        try:
            data = yaml.safe_load(path.read_text()) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise KitError(f"cannot read the artifact manifest {path}: {exc}") from exc
        merged.update((data.get("artifacts") or {}) if isinstance(data, dict) else {})
    try:
        return Manifest.model_validate({"artifacts": merged})
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise KitError(f"artifact manifest: {where}: {first['msg']}") from None


def plan(
    manifest: Manifest,
    versions: Mapping[str, str],
    layers: Iterable[str],
    arch: str = "amd64",
    addons: Iterable[str] = (),
    *,
    lock: Lock | None = None,
    locked: bool = False,
) -> list[Item]:
    """Every cache item the given layers (and add-ons) need for ``arch``, versions taken from
    the config, each with its pin: the repository's, else the cache's ``lock``, else none yet.
    With ``locked``, anything the repository itself does not pin is refused."""
    wanted = {"node", *layers}
    enabled_addons = set(addons)
    items = []
    missing = []
    unpinned = []
    for name, art in sorted(manifest.artifacts.items()):
        if art.layer not in wanted or (art.addon and art.addon not in enabled_addons):
            continue
        version = versions.get(art.version_key, "") if art.version_key else (art.version or "")
        per_arch = art.versions.get(version)
        if per_arch is None:
            missing.append(f"{name} {version or '(no version)'} (the manifest has {', '.join(art.versions) or 'none'})")
            continue
        dl = per_arch.get(arch) or per_arch.get("all")  # type: ignore[call-overload]
        if dl is None:
            missing.append(f"{name} {version} for {arch}")
            continue
        if dl.sha256 is None:
            unpinned.append(f"{name} {version} ({arch})")
        items.append(_pinned_item(Item(name, version, arch, art.kind, dl.url, dl.sha256, art.standin, art.pulls_images, dl.checksum_url, dl.chart_index), lock))
    if missing:
        raise KitError(
            "the artifact manifest has no entry for:\n"
            + "\n".join(f"  - {m}" for m in missing)
            + "\nAdd the version to labkit/artifacts.yml (its sha256 is pinned on first fetch), or pick a listed version in sandbox.yml."
        )
    if locked and unpinned:
        raise KitError(
            "--locked: the repository does not pin these artifacts, so nothing was fetched or booted:\n"
            + "\n".join(f"  - {u}" for u in unpinned)
            + "\nPin them first (`./kit cache.fetch`, then `./kit cache.pin` and review labkit/artifacts.yml), or drop --locked."
        )
    return items


def _pinned_item(item: Item, lock: Lock | None) -> Item:
    """The item with its pin: the repository's, else the lock's for the same URL; a Debian
    package that moved on in the mirror is fetched at the version its lock entry names."""
    if item.sha256 is not None:
        item = replace(item, pin=Pin(item.sha256, "repository", item.url))
    else:
        held = lock.get(item.name, item.version, item.arch) if lock else None
        if held is not None and held.url == item.url:
            item = replace(item, sha256=held.sha256, pin=held)
    if item.kind == "deb" and lock is not None:
        moved = lock.get(item.name, item.version, item.arch)
        if moved is not None and moved.source == "debian-index" and moved.fetch_url:
            item = replace(item, url=moved.fetch_url, sha256=moved.sha256, version=moved.version, pin=moved, pinned_version=item.version)
    return item


def image_refs(manifest: Manifest, versions: Mapping[str, str]) -> dict[str, str]:
    """What the roles get as `kit.images`: every image artifact's reference
    (`registry/repository:tag`) at the configured versions, whichever layers are on, so a
    role can name an image of a layer it configures but does not run (containerd names
    Kubernetes' pause image). An image without an entry for its version is left out: the
    plan refuses it when its layer is on."""
    refs: dict[str, str] = {}
    for name, art in sorted(manifest.artifacts.items()):
        if art.kind != "image":
            continue
        version = versions.get(art.version_key, "") if art.version_key else (art.version or "")
        per_arch = art.versions.get(version) or {}
        urls = {dl.url for dl in per_arch.values()}
        if len(urls) > 1:
            raise KitError(f"artifact manifest: {name} {version} names a different image per architecture ({', '.join(sorted(urls))}): one reference serves every node")
        if urls:
            refs[name] = urls.pop().split("://", 1)[1]
    return refs


def role_vars(items: Sequence[Item]) -> dict[str, dict[str, str]]:
    """What the roles get as `kit.artifacts`: each release file's cache path, sha256 and version."""
    out: dict[str, dict[str, str]] = {}
    for i in items:
        if i.kind == "deb":
            continue
        out[i.name] = {"path": str(i.relpath()), "sha256": i.sha256, "version": i.version}
        if i.kind == "image":
            out[i.name]["ref"] = i.image_ref
    return out
