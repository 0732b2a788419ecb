"""The cache's lock: checksums pinned on first fetch, kept beside the bytes (like go.sum).

``labkit/artifacts.yml`` pins what the repository has reviewed.  An artifact it does not
pin is pinned on its *first* fetch from the strongest source there is (see
``labkit.cache.trust``) and recorded here, in ``<cache>/labkit.lock.yml``.  Every later fetch
verifies against that record, so a cache copied to thirty laptops installs the same
bytes on each, and an upstream that serves different bytes for the same version is
refused.  ``./kit cache.pin`` turns the records into a reviewed change of artifacts.yml.

One record per ``name version arch``.  Merging (two processes, or a lock copied from
another cache) follows three rules:

- the same checksum is one pin: the stronger source and the earlier date are kept;
- a different checksum for the same key is a conflict, refused with both checksums;
- a Debian package that moved on (``debian-index``) may move again: its trust comes
  from Debian's signed index each time, not from the first answer.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import os
import threading
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Literal

import yaml

from labkit.errors import KitError

LOCK_NAME = "labkit.lock.yml"
Source = Literal["repository", "checksum-file", "chart-index", "registry", "download", "debian-index"]
# Strongest first: what upstream publishes beside the release, then an index that lists
# the file, then the registry's own digest, and only as a last resort the bytes we got.
STRENGTH: dict[str, int] = {"repository": 0, "checksum-file": 1, "debian-index": 1, "chart-index": 2, "registry": 3, "download": 4}
LABELS: dict[str, str] = {
    "repository": "pinned in the repository",
    "checksum-file": "upstream's checksum file",
    "chart-index": "the chart repository's index",
    "registry": "the registry's manifest digest",
    "download": "trusted on first use",
    "debian-index": "Debian's signed index (the pin moved)",
}
PUBLISHED = ("repository", "checksum-file", "chart-index", "debian-index")


def key(name: str, version: str, arch: str) -> str:
    return f"{name} {version} {arch}"


@dataclass(frozen=True)
class Pin:
    """One pinned checksum and where it came from."""

    sha256: str
    source: Source
    url: str  # the upstream URL it pins (never a mirror's)
    evidence: str = ""  # the checksum file or index it was read from
    date: str = ""  # when it was first pinned (UTC, ISO 8601)
    # Debian packages that moved on: the version and pool URL now taken instead.
    version: str = ""
    fetch_url: str = ""

    def label(self) -> str:
        text = LABELS[self.source]
        return f"{text} ({self.date[:10]})" if self.date and self.source != "repository" else text

    @property
    def published(self) -> bool:
        return self.source in PUBLISHED


class LockConflict(KitError):
    pass


def now() -> str:
    return dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat()


def merge_pin(k: str, old: Pin | None, new: Pin) -> Pin:
    """The pin to keep for ``k`` when ``new`` meets ``old`` (see the module's rules)."""
    if old is None:
        return new
    if old.source == "debian-index" and new.source == "debian-index":
        return new
    if old.sha256 != new.sha256:
        raise LockConflict(
            f"{k}: the lock pins sha256 {old.sha256} ({old.label()}, from {old.evidence or old.url}), "
            f"but {new.evidence or new.url} now gives sha256 {new.sha256} ({LABELS[new.source]}). "
            "Upstream serves different bytes for the same version: refused, nothing was replaced. "
            "If the change is expected upstream, delete that entry from the cache's labkit.lock.yml and fetch again"
        )
    stronger = new if STRENGTH[new.source] < STRENGTH[old.source] else old
    return replace(stronger, date=min(filter(None, (old.date, new.date)), default=""))


def merge(ours: Mapping[str, Pin], theirs: Mapping[str, Pin]) -> dict[str, Pin]:
    """Both locks in one; a checksum conflict on any key is refused (LockConflict)."""
    out = dict(ours)
    for k, pin in theirs.items():
        out[k] = merge_pin(k, out.get(k), pin)
    return dict(sorted(out.items()))


def _parse(path: Path) -> dict[str, Pin]:
    try:
        text = path.read_text()
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise KitError(f"cannot read the cache's lock {path}: {exc}. Fix or remove it (its pins are taken again on the next fetch)") from exc
    return parse(text, path)


def parse(text: str, path: Path | str) -> dict[str, Pin]:
    """The pins of a lock file's text (``path`` names it in errors)."""
    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        raise KitError(f"cannot read the cache's lock {path}: {exc}. Fix or remove it (its pins are taken again on the next fetch)") from exc
    pins = data.get("pins") if isinstance(data, dict) else None
    if not isinstance(pins, dict):
        raise KitError(f"{path} is not a labkit lock (no `pins:` mapping). Fix or remove it")
    out = {}
    for k, raw in pins.items():
        if not isinstance(raw, dict) or not all(isinstance(v, str) for v in raw.values()):
            raise KitError(f"{path}: entry {k!r} is malformed (a mapping of text fields is expected). Fix or remove it")
        try:
            pin = Pin(**raw)
        except TypeError as exc:
            raise KitError(f"{path}: entry {k!r} is malformed ({exc})") from None
        if pin.source not in STRENGTH or len(pin.sha256) != 64:
            raise KitError(f"{path}: entry {k!r} has an unknown source or a malformed sha256")
        out[str(k)] = pin
    return out


HEADER = (
    "# The cache's lock, written by labkit: checksums pinned on first fetch, with their source.\n"
    "# It travels with the cache (copy both, get the same bytes). `./kit cache.pin` moves\n"
    "# these pins into labkit/artifacts.yml for review. Do not edit by hand.\n"
)


class Lock:
    """The lock file of one cache folder; safe across threads and processes."""

    def __init__(self, cache_dir: Path) -> None:
        self.path = cache_dir / LOCK_NAME
        self._mutex = threading.Lock()
        self._pins: dict[str, Pin] | None = None

    def pins(self) -> dict[str, Pin]:
        if self._pins is None:
            self._pins = _parse(self.path)
        return self._pins

    def get(self, name: str, version: str, arch: str) -> Pin | None:
        return self.pins().get(key(name, version, arch))

    @contextlib.contextmanager
    def _exclusive(self) -> Iterator[None]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._mutex, open(self.path.with_name(f".{LOCK_NAME}.flock"), "w") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            yield

    def record(self, name: str, version: str, arch: str, pin: Pin) -> Pin:
        """Add a pin (merged with what another process may have written meanwhile)."""
        k = key(name, version, arch)
        with self._exclusive():
            current = merge(_parse(self.path), {k: replace(pin, date=pin.date or now())})
            self._write(current)
            self._pins = current
        return current[k]

    def adopt(self, theirs: Mapping[str, Pin]) -> int:
        """Merge another cache's pins into this lock (a class's, a copied cache's), each
        keeping its source; a different checksum for a key is refused (LockConflict).
        Returns how many keys were new here."""
        with self._exclusive():
            current = _parse(self.path)
            merged = merge(current, theirs)
            if merged != current:
                self._write(merged)
            self._pins = merged
        return len(set(merged) - set(current))

    def drop(self, keys: list[str]) -> None:
        with self._exclusive():
            current = _parse(self.path)
            for k in keys:
                current.pop(k, None)
            self._write(current)
            self._pins = current

    def _write(self, pins: Mapping[str, Pin]) -> None:
        body = {"pins": {k: {f: v for f, v in asdict(p).items() if v} for k, p in sorted(pins.items())}}
        tmp = self.path.with_name(f".{LOCK_NAME}.{os.getpid()}.{threading.get_ident()}.tmp")
        tmp.write_text(HEADER + yaml.safe_dump(body, sort_keys=False, width=200))
        tmp.replace(self.path)
