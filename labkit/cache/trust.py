"""Where a checksum comes from, and where the bytes come from.

**Trust sources**, strongest first (an artifact the repository does not pin is pinned on
its first fetch from the first one that answers):

1. the checksum file upstream publishes beside the release (``checksum_url``): one hash,
   ``HASH  name`` lines, or a multi-line file such as Knative's ``checksums.txt``;
2. the ``digest:`` of the chart in a Helm chart repository's ``index.yaml`` (``chart_index``);
3. for images, the registry's digest of the image manifest for the nodes' architecture;
4. only as a last resort, the sha256 of the download itself (trusted on first use).

**Mirrors** (``cache.mirrors`` in sandbox.yml) only change where bytes are read from:
URL-prefix rewrites for release files, checksum files and indexes, and a base URL per
registry for images.  The pin is always of the upstream URL, and verified exactly as
without a mirror.
"""

from __future__ import annotations

import re
import urllib.error
import urllib.request
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import yaml

from labkit.errors import KitError

_HEX64 = re.compile(r"\b[0-9a-f]{64}\b")


@dataclass(frozen=True)
class Mirrors:
    """URL-prefix rewrites for files, and a base URL for each mirrored registry; or a
    ``peer``: another kit's cache served in the cache's own layout (the classroom's
    server), read with its token, for everything."""

    files: Mapping[str, str] = field(default_factory=dict)
    registries: Mapping[str, str] = field(default_factory=dict)
    peer: str = ""
    peer_token: str = ""

    def rewrite(self, url: str) -> str:
        """``url`` with the longest matching prefix replaced (unchanged when none matches)."""
        best = max((p for p in self.files if url.startswith(p)), key=len, default=None)
        return url if best is None else self.files[best] + url[len(best) :]

    def source(self, url: str, relpath: str) -> str:
        """Where a file is read from: the peer's copy at its place in the cache, else ``url``
        through the mirrors."""
        return f"{self.peer.rstrip('/')}/{relpath}" if self.peer else self.rewrite(url)

    def peer_headers(self) -> dict[str, str]:
        """What every request to the peer carries: its token (nothing without a peer)."""
        return {"Authorization": f"Bearer {self.peer_token}"} if self.peer else {}

    def headers(self, url: str) -> dict[str, str]:
        """What a request to ``url`` carries: the peer's token, to the peer only."""
        return self.peer_headers() if self.peer and url.startswith(self.peer.rstrip("/") + "/") else {}

    def registry_endpoints(self, registries: Iterable[str]) -> dict[str, str]:
        """The base URL of each registry: the peer's copy (`<peer>/<registry>`: the cache
        keeps tags by registry), else the configured mirrors."""
        if self.peer:
            return {r: f"{self.peer.rstrip('/')}/{r}" for r in registries}
        return dict(self.registries)

    def describe(self, url: str) -> str:
        """Where ``url`` is read from, for the fetch summary: `upstream host` or `mirror host`."""
        if self.peer:
            return f"the class server {self.peer.split('://', 1)[-1].rstrip('/')}"
        fetched = self.rewrite(url)
        host = fetched.split("://", 1)[-1].split("/", 1)[0] or fetched.split("://", 1)[0]
        return f"mirror {host}" if fetched != url else host


def parse_checksum_file(text: str, filename: str) -> str | None:
    """The sha256 for ``filename`` in an upstream checksum file: `HASH  name` lines (as
    sha256sum writes them, Knative's multi-line checksums.txt included) or one bare hash."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    for line in lines:
        parts = line.split()
        if len(parts) >= 2 and parts[-1].lstrip("*").rsplit("/", 1)[-1] == filename and _HEX64.fullmatch(parts[0].lower()):
            return parts[0].lower()
    if len(lines) == 1 and len(lines[0].split()) == 1 and _HEX64.fullmatch(lines[0].lower()):
        return lines[0].lower()  # a file of one bare hash (Kubernetes' .sha256 files)
    return None


def parse_chart_index(text: str, filename: str) -> str | None:
    """The ``digest`` a Helm repository's index.yaml gives the chart archive ``filename``."""
    try:
        index = yaml.safe_load(text)
    except yaml.YAMLError:
        return None
    entries = index.get("entries") if isinstance(index, dict) else None
    if not isinstance(entries, dict):
        return None
    for versions in entries.values():
        for entry in versions if isinstance(versions, list) else []:
            if not isinstance(entry, dict):
                continue
            urls, digest = entry.get("urls") or [], str(entry.get("digest", ""))
            if isinstance(urls, list) and any(str(u).rsplit("/", 1)[-1] == filename for u in urls) and _HEX64.fullmatch(digest):
                return digest
    return None


def read_url(url: str, mirrors: Mirrors, timeout: float, limit: int = 64 << 20) -> bytes:
    """A small text file (checksum file, index) through the mirrors; errors as KitError."""
    fetched = mirrors.rewrite(url)
    try:
        with urllib.request.urlopen(fetched, timeout=timeout) as resp:  # noqa: S310 - URLs come from the manifest and the config
            body = resp.read(limit + 1)
    except urllib.error.HTTPError as exc:
        raise KitError(f"{fetched} answered HTTP {exc.code}") from None
    except (urllib.error.URLError, TimeoutError, OSError, ValueError) as exc:
        raise KitError(f"cannot read {fetched} ({getattr(exc, 'reason', exc)})") from None
    if len(body) > limit:
        raise KitError(f"{fetched} is larger than {limit >> 20} MiB: not a checksum file or index")
    return body
