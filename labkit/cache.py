"""The artifact cache: every file a role installs comes from here, never from upstream.

``labkit/artifacts.yml`` (the manifest) lists each artifact once: its kind, the layer
that needs it, and per version and architecture the upstream URL and sha256.  The
versions themselves are chosen in ``sandbox.yml`` (``version_key``) or fixed in the
manifest (``version``), so a version is written once and its checksum once.

An *overlay* manifest (same format) can add or replace entries; CI uses one for its
stand-ins built from Debian's packages (see ``labkit.standins``).

``plan()`` lists what the enabled layers need; ``status()`` says what is present,
missing or corrupt; ``fetch()`` downloads what is missing (resumable, verified, in
parallel); ``add()`` puts a file obtained another way in its place after checking its
checksum; ``require_complete()`` stops provisioning before any node changes.
"""

from __future__ import annotations

import hashlib
import re
import shutil
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from labkit.errors import KitError

MANIFEST = Path(__file__).with_name("artifacts.yml")
ARCHES = ("amd64", "arm64")
Kind = Literal["file", "archive", "deb", "manifest", "image"]
SHA256 = Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Download(_Strict):
    url: Annotated[str, Field(pattern=r"^(https?|file)://")]
    sha256: SHA256 | None  # None: not pinned yet (see `./kit cache.pin`)
    checksum_url: str | None = None  # the checksum file upstream publishes beside it


class Artifact(_Strict):
    kind: Kind
    layer: Literal["node", "kubernetes", "istio", "knative", "labs"]
    description: str = ""
    version_key: str | None = None  # take the version from sandbox.yml's `versions`
    version: str | None = None  # or pin it here
    standin: bool = False  # built locally from Debian's packages (CI only), not upstream
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
    url: str
    sha256: str
    standin: bool

    @property
    def filename(self) -> str:
        return self.url.rstrip("/").rsplit("/", 1)[-1]

    def relpath(self) -> Path:
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


def plan(manifest: Manifest, versions: Mapping[str, str], layers: Iterable[str], arch: str = "amd64") -> list[Item]:
    """Every cache item the given layers need for ``arch``, versions taken from the config."""
    wanted = {"node", *layers}
    items = []
    missing = []
    for name, art in sorted(manifest.artifacts.items()):
        if art.layer not in wanted:
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
            missing.append(f"{name} {version} ({arch}): not pinned yet (a maintainer runs `./kit cache.pin` on a connected machine)")
            continue
        items.append(Item(name, version, arch, art.kind, dl.url, dl.sha256, art.standin))
    if missing:
        raise KitError(
            "the artifact manifest has no usable pinned checksum for:\n"
            + "\n".join(f"  - {m}" for m in missing)
            + "\nAdd the version with its sha256 to labkit/artifacts.yml (or pick a listed version in sandbox.yml)."
        )
    return items


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


State = Literal["present", "missing", "corrupt"]


def state_of(cache_dir: Path, item: Item) -> State:
    path = cache_dir / item.relpath()
    if not path.exists():
        return "missing"
    return "present" if sha256_of(path) == item.sha256 else "corrupt"


def status(cache_dir: Path, items: Sequence[Item]) -> list[tuple[Item, State]]:
    return [(item, state_of(cache_dir, item)) for item in items]


def how_to_get(item: Item) -> str:
    if item.standin:
        return "a CI stand-in: rebuild it with `./kit cache.standins`"
    return f"run `./kit cache.fetch` on a connected machine, or download {item.url} and `./kit cache.add FILE`"


def require_complete(cache_dir: Path, items: Sequence[Item]) -> None:
    """Refuse to provision when anything is missing or corrupt (before any node changes)."""
    bad = [(item, st) for item, st in status(cache_dir, items) if st != "present"]
    if bad:
        rows = "\n".join(f"  - {item.name} {item.version} ({item.arch}): {st} at {cache_dir / item.relpath()}. Fix: {how_to_get(item)}" for item, st in bad)
        raise KitError(f"the artifact cache is incomplete, so nothing was provisioned:\n{rows}")


def _download(item: Item, target: Path, progress: Callable[[int], None], timeout: float) -> None:
    """Download with resume (HTTP Range on a .part file) and verify the checksum."""
    part = target.with_name(target.name + ".part")
    target.parent.mkdir(parents=True, exist_ok=True)
    have = part.stat().st_size if part.exists() else 0
    request = urllib.request.Request(item.url, headers={"Range": f"bytes={have}-"} if have else {})  # noqa: S310 - URLs come from the manifest
    try:
        with urllib.request.urlopen(request, timeout=timeout) as resp:  # noqa: S310
            resumed = have and resp.status == 206
            progress(have if resumed else 0)
            with part.open("ab" if resumed else "wb") as out:
                while chunk := resp.read(1 << 16):
                    out.write(chunk)
                    progress(len(chunk))
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and have:  # already complete
            pass
        else:
            raise KitError(f"{item.name}: {item.url} answered HTTP {exc.code}") from exc
    except (urllib.error.URLError, TimeoutError, OSError) as exc:
        raise KitError(f"{item.name}: cannot download {item.url} ({exc}); run `./kit cache.fetch` again to resume") from exc
    got = sha256_of(part)
    if got != item.sha256:
        part.unlink()
        raise KitError(f"{item.name}: checksum mismatch for {item.url} (expected {item.sha256}, got {got}); the download was discarded")
    part.replace(target)


def fetch(
    cache_dir: Path,
    items: Sequence[Item],
    *,
    jobs: int = 4,
    timeout: float = 60,
    progress: Callable[[Item, int], None] = lambda item, n: None,
    done: Callable[[Item, str], None] = lambda item, msg: None,
) -> list[str]:
    """Download every missing or corrupt item in parallel; return the errors (empty: all good)."""
    todo = []
    for item, st in status(cache_dir, items):
        if st == "present":
            done(item, "present")
            continue
        if st == "corrupt":
            (cache_dir / item.relpath()).unlink()
        todo.append(item)
    errors: list[str] = []
    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        futures = {pool.submit(_download, item, cache_dir / item.relpath(), lambda n, it=item: progress(it, n), timeout): item for item in todo}
        for future in as_completed(futures):
            item = futures[future]
            try:
                future.result()
                done(item, "fetched")
            except KitError as exc:
                errors.append(str(exc))
                done(item, "failed")
    return errors


def add(cache_dir: Path, items: Sequence[Item], file: Path) -> Item:
    """Put ``file`` in the cache as the item whose checksum it has."""
    if not file.is_file():
        raise KitError(f"{file} is not a file")
    digest = sha256_of(file)
    for item in items:
        if item.sha256 == digest:
            target = cache_dir / item.relpath()
            target.parent.mkdir(parents=True, exist_ok=True)
            tmp = target.with_name(target.name + ".part")
            shutil.copyfile(file, tmp)
            tmp.replace(target)
            return item
    names = {i.filename: i for i in items}
    near = names.get(file.name)
    if near is not None:
        raise KitError(
            f"{file.name} does not match the pinned checksum of {near.name} {near.version} ({near.arch}): expected {near.sha256}, got {digest}. Download it again from {near.url}"
        )
    raise KitError(f"{file.name} (sha256 {digest}) matches no artifact the config needs; `./kit cache.status` lists them")


_HEX64 = re.compile(r"\b[0-9a-f]{64}\b")


def parse_checksum_file(text: str, filename: str) -> str | None:
    """The sha256 for ``filename`` in an upstream checksum file (`HASH  name` lines or a bare hash)."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    for line in lines:
        parts = line.split()
        if len(parts) >= 2 and parts[-1].lstrip("*").rsplit("/", 1)[-1] == filename and _HEX64.fullmatch(parts[0]):
            return parts[0]
    if len(lines) == 1 and _HEX64.fullmatch(lines[0].split()[0]):
        return lines[0].split()[0]
    return None


def pin(manifest_path: Path, *, timeout: float = 60, say: Callable[[str], None] = print) -> list[str]:
    """Fill in every `sha256: null` from its upstream checksum file (connected machines only)."""
    text = manifest_path.read_text()
    manifest = load_manifest([manifest_path])
    errors = []
    for name, art in manifest.artifacts.items():
        for version, per_arch in art.versions.items():
            for arch, dl in per_arch.items():
                if dl.sha256 is not None:
                    continue
                if not dl.checksum_url:
                    errors.append(f"{name} {version} {arch}: no checksum_url to pin from")
                    continue
                try:
                    with urllib.request.urlopen(dl.checksum_url, timeout=timeout) as resp:  # noqa: S310 - URLs come from the manifest
                        body = resp.read().decode()
                except (urllib.error.URLError, TimeoutError, OSError) as exc:
                    errors.append(f"{name} {version} {arch}: cannot read {dl.checksum_url} ({exc})")
                    continue
                digest = parse_checksum_file(body, dl.url.rsplit("/", 1)[-1])
                if digest is None:
                    errors.append(f"{name} {version} {arch}: no checksum for {dl.url.rsplit('/', 1)[-1]} in {dl.checksum_url}")
                    continue
                marker = f'url: "{dl.url}", sha256: null'
                text = text.replace(marker, f'url: "{dl.url}", sha256: "{digest}"', 1)
                say(f"pinned {name} {version} {arch}: {digest}")
    tmp = manifest_path.with_suffix(".tmp")
    tmp.write_text(text)
    tmp.replace(manifest_path)
    return errors
