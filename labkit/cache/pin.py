"""Maintainers' pins: the lock's checksums written into ``labkit/artifacts.yml`` for
review, and the images a release manifest runs that nothing pins.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import yaml

from labkit.cache.lock import Lock
from labkit.cache.lock import key as lock_key
from labkit.cache.manifest import Manifest, load_manifest

# --------------------------------------------------------------------------- pin


def unpinned_images(text: str, manifest: Manifest) -> list[str]:
    """The images a release manifest runs that are neither pinned by digest in the file
    itself nor listed as image artifacts in ``manifest`` (the roles refuse such a file)."""
    from labkit.contract import role_filters

    f = role_filters()  # the roles' own image reading, so pin time and install time agree
    images = [dl.url for art in manifest.artifacts.values() if art.kind == "image" for per_arch in art.versions.values() for dl in per_arch.values()]
    pinned = {f.normalize_image(url.removeprefix("docker://")) for url in images}
    return [i for i in f.images(yaml.safe_load_all(text)) if "@sha256:" not in i and f.normalize_image(i) not in pinned]


def pin_from_lock(manifest_path: Path, lock: Lock, *, say: Callable[[str], None] = print) -> tuple[int, list[str]]:
    """Write the lock's pins into ``manifest_path`` for every `sha256: null` they fill (a
    reviewed change); return how many were written and what could not be."""
    text = manifest_path.read_text()
    manifest = load_manifest([manifest_path])
    pins = lock.pins()
    errors: list[str] = []
    written = 0
    for name, art in manifest.artifacts.items():
        for version, per_arch in art.versions.items():
            for arch, dl in per_arch.items():
                if dl.sha256 is not None:
                    continue
                held = [pins.get(lock_key(name, version, a)) for a in ((arch,) if arch != "all" else ("amd64", "arm64", "all"))]
                pin = next((p for p in held if p is not None and p.url == dl.url), None)
                if pin is None:
                    continue
                marker = re.compile(rf'^( *{re.escape(arch)}: \{{)(url: "{re.escape(dl.url)}",) sha256: null', re.MULTILINE)
                # The pin goes on a line of its own, under `url:`, so lines stay short.
                text, n = marker.subn(lambda m, sha=pin.sha256: f'{m[1]}{m[2]}\n{" " * len(m[1])}sha256: "{sha}"', text, count=1)
                if n:
                    written += 1
                    say(f"pinned {name} {version} {arch}: {pin.sha256} — {pin.label()}" + (f", {pin.evidence}" if pin.evidence else ""))
                else:
                    errors.append(f"{name} {version} {arch}: write `{arch}: {{url: ..., sha256: null}}` on one line so it can be pinned")
    tmp = manifest_path.with_name(f".{manifest_path.name}.tmp")
    tmp.write_text(text)
    tmp.replace(manifest_path)
    return written, errors
