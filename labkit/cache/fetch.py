"""Fetch what the cache lacks: resumable, verified, in parallel; an item no one pinned
yet is pinned from the strongest source there is and recorded in the cache's lock.
"""

from __future__ import annotations

import errno
import shutil
import threading
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Literal

from labkit.cache.lock import Lock, Pin
from labkit.cache.manifest import Item
from labkit.cache.oci import sha256_file as sha256_of
from labkit.cache.registry import ImageRef, RegistryClient, digest_refs
from labkit.cache.store import State, how_to_get, status
from labkit.cache.trust import Mirrors, parse_chart_index, parse_checksum_file, read_url
from labkit.errors import KitError

# --------------------------------------------------------------------------- fetch


class Reporter:
    """What a fetch tells its display: sizes as they become known, bytes, and the end."""

    def start(self, item: Item, total: int | None) -> None:
        pass

    def advance(self, item: Item, n: int) -> None:
        pass

    def done(self, item: Item, outcome: str) -> None:
        pass


@dataclass
class Outcome:
    item: Item
    state: Literal["present", "fetched", "failed"]
    origin: str = ""  # where the bytes came from (upstream host or mirror)
    pin: Pin | None = None  # the pin it was verified against (new ones are in the lock)
    new_pin: bool = False


@dataclass
class FetchReport:
    outcomes: list[Outcome]
    errors: list[str]

    def summary(self) -> list[str]:
        """One line per source of bytes and one per kind of trust: what came from where."""
        fetched = [o for o in self.outcomes if o.state == "fetched"]
        present = sum(1 for o in self.outcomes if o.state == "present")
        lines = [f"{len(fetched)} fetched, {present} already in the cache, {len(self.errors)} failed"]
        origins: dict[str, int] = {}
        for o in fetched:
            origins[o.origin] = origins.get(o.origin, 0) + 1
        lines += [f"  from {origin}: {n}" for origin, n in sorted(origins.items())]
        new = [o for o in self.outcomes if o.new_pin and o.pin]
        groups = (
            ("pinned now from a published checksum", lambda p: p.published),
            ("pinned now from the registry's digest of the tag", lambda p: p.source == "registry"),
            ("pinned now on first use (upstream publishes no checksum): review these", lambda p: p.source == "download"),
        )
        for title, belongs in groups:
            members = [o for o in new if o.pin and belongs(o.pin)]
            if members:
                lines.append(f"  {title}: {len(members)}")
                lines += [f"    {o.item.key}: {o.pin.label() if o.pin else ''}" for o in members]
        return lines


class Interrupted(KitError):
    pass


def _download(
    url: str,
    part: Path,
    expected_size: Callable[[int | None], None],
    progress: Callable[[int], None],
    timeout: float,
    stop: threading.Event,
    headers: Mapping[str, str] | None = None,
) -> None:
    """Download ``url`` into ``part``, resuming it with an HTTP Range request."""
    have = part.stat().st_size if part.exists() else 0
    request = urllib.request.Request(url, headers={**(headers or {}), **({"Range": f"bytes={have}-"} if have else {})})  # noqa: S310 - URLs come from the manifest
    try:
        with urllib.request.urlopen(request, timeout=timeout) as resp:  # noqa: S310
            resumed = bool(have) and resp.status == 206
            length = resp.headers.get("Content-Length")
            expected_size((int(length) + (have if resumed else 0)) if length and length.isdigit() else None)
            progress(have if resumed else 0)
            with part.open("ab" if resumed else "wb") as out:
                while chunk := resp.read(1 << 16):
                    if stop.is_set():
                        raise Interrupted("interrupted")
                    out.write(chunk)
                    progress(len(chunk))
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and have:  # already complete
            return
        raise _HTTPStatus(exc.code, f"{url} answered HTTP {exc.code}") from None
    except OSError as exc:
        if exc.errno == errno.ENOSPC:
            free = shutil.disk_usage(part.parent).free >> 20
            raise KitError(f"the disk holding the cache is full ({free} MiB free in {part.parent}): free space, then run the same command again to resume") from None
        raise KitError(f"cannot download {url} ({getattr(exc, 'reason', exc)}); run the same command again to resume") from None
    except (TimeoutError, ValueError) as exc:
        raise KitError(f"cannot download {url} ({exc}); run the same command again to resume") from None


class _HTTPStatus(KitError):
    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code


def published_pin(item: Item, mirrors: Mirrors, timeout: float) -> Pin | None:
    """The checksum upstream publishes for ``item`` (checksum file, then chart index), or
    None when it publishes none. A source that is declared but cannot be read is an error:
    the kit never falls back to a weaker source because a stronger one failed."""
    if item.checksum_url:
        text = read_url(item.checksum_url, mirrors, timeout).decode(errors="replace")
        digest = parse_checksum_file(text, item.filename)
        if digest is None:
            raise KitError(f"{item.checksum_url} lists no sha256 for {item.filename}")
        return Pin(digest, "checksum-file", item.url, evidence=item.checksum_url)
    if item.chart_index:
        digest = parse_chart_index(read_url(item.chart_index, mirrors, timeout).decode(errors="replace"), item.filename)
        if digest is None:
            raise KitError(f"the chart index {item.chart_index} lists no digest for {item.filename}")
        return Pin(digest, "chart-index", item.url, evidence=item.chart_index)
    return None


def _mismatch(item: Item, expected: Pin, got: str, fetched_from: str) -> KitError:
    return KitError(
        f"{item.key}: {fetched_from} served bytes with sha256 {got}, but {item.name} {item.version} is pinned to sha256 {expected.sha256} "
        f"({expected.label()}{', ' + expected.evidence if expected.evidence else ''}). Upstream serves different bytes for the same version "
        "(or the download is damaged): refused, nothing in the cache was replaced. If upstream re-released it on purpose, review the change and update the pin"
    )


@dataclass
class _Fetcher:
    """One fetch run's shared state; one method per way an item reaches the cache."""

    cache_dir: Path
    mirrors: Mirrors
    lock: Lock
    reporter: Reporter
    registry: RegistryClient
    moved: Callable[[Item, Mirrors], Pin] | None
    stop: threading.Event
    timeout: float

    def get(self, item: Item) -> Outcome:
        if self.stop.is_set():
            raise Interrupted("interrupted")
        return self.get_image(item) if item.kind == "image" else self.get_file(item)

    def record(self, item: Item, pin: Pin) -> Pin:
        return self.lock.record(item.name, item.pinned_version or item.version, item.arch, pin)

    def from_class(self, item: Item) -> None:
        """A class server holds only what its cache pins: an item no pin names is not there."""
        if self.mirrors.peer and item.pin is None:
            raise KitError(
                f"{item.key}: {self.mirrors.describe(item.url)} does not hold it (its lock has no pin for it): ask the instructor to run "
                "`./kit cache.fetch` with the class's sandbox.yml, or leave the class (`./kit classroom.leave`) to fetch it yourself"
            )

    def get_image(self, item: Item) -> Outcome:
        if not item.url.startswith("docker://"):
            raise KitError(f"{item.name}: {how_to_get(item)}")
        self.from_class(item)
        ref = ImageRef.parse(item.url)
        pin, new = item.pin, False
        if item.sha256 is None:
            digest = self.registry.platform_digest(ref, item.arch).removeprefix("sha256:")
            pin, new = Pin(digest, "registry", item.url, evidence=f"{ref} linux/{item.arch}"), True
        if pin is None:
            raise KitError(f"{item.key}: no pin")
        self.reporter.start(item, None)
        self.registry.pull(ref, f"sha256:{pin.sha256}", self.cache_dir / "oci", lambda n: self.reporter.advance(item, n), arch=item.arch)
        if new:
            pin = self.record(item, pin)
        origin = self.mirrors.describe(item.url) if self.mirrors.peer else ref.registry if ref.registry not in self.mirrors.registries else f"mirror of {ref.registry}"
        return Outcome(item, "fetched", origin, pin, new)

    def pull_images(self, item: Item, target: Path) -> None:
        if item.pulls_images:
            for ref_text in digest_refs(target.read_text()):
                self.registry.pull_pinned(ImageRef.parse(ref_text), item.arch, self.cache_dir / "oci", lambda n: self.reporter.advance(item, n))

    def get_file(self, item: Item) -> Outcome:
        self.from_class(item)
        expected, new = item.pin, False
        if expected is None:
            expected, new = published_pin(item, self.mirrors, self.timeout), True
        target = self.cache_dir / item.relpath()
        if expected is not None and not new and target.is_file() and sha256_of(target) == expected.sha256:
            self.pull_images(item, target)  # the file is here; only the images it pins are not
            return Outcome(item, "fetched", "the cache", expected)
        target.parent.mkdir(parents=True, exist_ok=True)
        part = target.with_name(f".{target.name}.{item.arch}.part")  # one per item: a .deb for "all" is one file for two arches
        fetched_from = self.mirrors.source(item.url, str(item.relpath()))
        try:
            _download(
                fetched_from,
                part,
                lambda total: self.reporter.start(item, total),
                lambda n: self.reporter.advance(item, n),
                self.timeout,
                self.stop,
                self.mirrors.headers(fetched_from),
            )
        except _HTTPStatus as exc:
            if exc.code in (404, 410) and item.kind == "deb" and self.moved is not None:
                return self.get_moved_deb(item)
            raise KitError(f"{item.name}: {exc}") from None
        expected = self.accept(item, part, expected, new, fetched_from)
        part.replace(target)
        self.pull_images(item, target)
        return Outcome(item, "fetched", self.mirrors.describe(item.url), expected, new)

    def accept(self, item: Item, part: Path, expected: Pin | None, new: bool, fetched_from: str) -> Pin:
        """The pin a downloaded file is kept under: its pin when the bytes match it, else a
        first-fetch pin recorded in the lock; a mismatch removes the download and raises."""
        got = sha256_of(part)
        if expected is not None and got != expected.sha256:
            part.unlink()
            raise _mismatch(item, expected, got, fetched_from)
        if expected is None:
            expected = Pin(got, "download", item.url, evidence=f"sha256 of the download from {fetched_from}")
        if new:
            try:
                expected = self.record(item, expected)
            except KitError:
                part.unlink()
                raise
        return expected

    def get_moved_deb(self, item: Item) -> Outcome:
        if self.moved is None:
            raise KitError(f"{item.key}: the pinned .deb is gone from the mirror")
        pin = self.moved(item, self.mirrors)
        now_item = replace(item, url=pin.fetch_url, version=pin.version, sha256=pin.sha256, pin=pin, pinned_version=item.pinned_version or item.version)
        outcome = self.get_file(now_item)
        return Outcome(now_item, "fetched", outcome.origin, self.record(now_item, pin), True)


def fetch(
    cache_dir: Path,
    items: Sequence[Item],
    *,
    jobs: int = 4,
    timeout: float = 60,
    mirrors: Mirrors | None = None,
    lock: Lock | None = None,
    reporter: Reporter | None = None,
    moved: Callable[[Item, Mirrors], Pin] | None = None,
    stop: threading.Event | None = None,
    states: Sequence[tuple[Item, State]] | None = None,
) -> FetchReport:
    """Fetch every missing or corrupt item, in parallel, each verified against its pin; an
    item no one has pinned yet is pinned from the strongest source there is and recorded
    in the cache's ``lock``. ``moved`` finds the current version of a Debian package whose
    pinned .deb is gone from the mirror; ``states`` is ``status()`` when the caller has it
    already (every file is hashed once). Errors are collected, never raised."""
    mirrors = mirrors or Mirrors()
    reporter = reporter or Reporter()
    stop = stop or threading.Event()
    registries = {ImageRef.parse(i.url).registry for i in items if i.kind == "image" and i.url.startswith("docker://")}
    registry = RegistryClient(endpoints=mirrors.registry_endpoints(registries), timeout=timeout, stop=stop, headers=mirrors.peer_headers())
    fetcher = _Fetcher(cache_dir, mirrors, lock or Lock(cache_dir), reporter, registry, moved, stop, timeout)
    outcomes: list[Outcome] = []
    todo = []
    for item, st in states if states is not None else status(cache_dir, items):
        if st == "present":
            outcomes.append(Outcome(item, "present", pin=item.pin))
            reporter.done(item, "present")
        else:
            todo.append(item)
    errors: list[str] = []
    pool = ThreadPoolExecutor(max_workers=max(1, jobs))
    futures = {pool.submit(fetcher.get, item): item for item in todo}
    try:
        for future in as_completed(futures):
            item = futures[future]
            try:
                outcomes.append(future.result())
                reporter.done(item, "fetched")
            except KitError as exc:
                message = str(exc) if str(exc).startswith(item.name) or item.key in str(exc) else f"{item.key}: {exc}"
                errors.append(message)
                outcomes.append(Outcome(item, "failed"))
                reporter.done(item, "failed")
    except KeyboardInterrupt:
        stop.set()  # the workers stop at their next chunk; partial downloads stay to resume
        pool.shutdown(wait=True, cancel_futures=True)
        raise
    pool.shutdown(wait=True)
    return FetchReport(outcomes, errors)
