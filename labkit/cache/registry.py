"""Pull images from upstream registries into the cache's OCI store (connected machines).

The nodes never reach a registry: containerd pulls every image through the cache's
registry endpoint (``labkit.cache.serve``).  This module fills that store.  ``pin`` resolves a
tag to the digest of the image manifest for one architecture (what the artifact manifest
records as ``sha256``); ``pull`` downloads that manifest, its config and its layers,
checks every digest, and tags it ``oci/tags/<registry>/<repository>/<tag>``, the name
containerd asks the mirror for.

The distribution protocol is spoken directly (urllib): anonymous bearer tokens as the
registries announce them in ``WWW-Authenticate``, and redirects to blob storage followed
*without* the token (object stores reject a second credential).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import threading
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from labkit.cache.oci import platform_manifest, sha256_file, tag_image, write_atomic
from labkit.errors import KitError

INDEX_TYPES = ("application/vnd.oci.image.index.v1+json", "application/vnd.docker.distribution.manifest.list.v2+json")
MANIFEST_TYPES = ("application/vnd.oci.image.manifest.v1+json", "application/vnd.docker.distribution.manifest.v2+json")
ACCEPT = ", ".join((*INDEX_TYPES, *MANIFEST_TYPES))
DOCKER_HUB = "registry-1.docker.io"
DIGEST = re.compile(r"sha256:[0-9a-f]{64}")
MAX_MANIFEST = 4 << 20  # manifests and indexes are kilobytes; a larger answer is not one


def digest_refs(text: str) -> list[str]:
    """Every image reference pinned by digest in a manifest (pod specs and ConfigMaps alike)."""
    found = re.findall(r"([a-z0-9][\w.:/-]*@sha256:[0-9a-f]{64})", text)
    return list(dict.fromkeys(found))


@dataclass(frozen=True)
class ImageRef:
    """``registry/repository:tag`` split, Docker Hub's short forms made explicit."""

    registry: str
    repository: str
    tag: str
    digest: str | None = None  # `name@sha256:...`: pinned by the file that names it

    @classmethod
    def parse(cls, ref: str) -> ImageRef:
        ref = ref.removeprefix("docker://")
        ref, _, digest = ref.partition("@")
        if digest and not DIGEST.fullmatch(digest):
            raise KitError(f"{ref}@{digest}: not a sha256 digest")
        parsed = cls._parse_name(ref)
        return cls(parsed.registry, parsed.repository, parsed.tag, digest or None)

    @classmethod
    def _parse_name(cls, ref: str) -> ImageRef:
        first, _, rest = ref.partition("/")
        if not rest or ("." not in first and ":" not in first and first != "localhost"):
            first, rest = "docker.io", ref  # Docker Hub's short forms: busybox, rancher/x
        if first == "docker.io" and "/" not in rest:
            rest = f"library/{rest}"
        name, tag = rest.rsplit(":", 1) if ":" in rest.rsplit("/", 1)[-1] else (rest, "latest")
        return cls(first, name, tag)

    def __str__(self) -> str:
        return f"{self.registry}/{self.repository}" + (f"@{self.digest}" if self.digest else f":{self.tag}")


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        return None  # redirects are followed by hand, without the registry's token


class RegistryClient:
    """Anonymous pulls from OCI registries. ``endpoints`` maps a registry to the base URL
    of its mirror (``cache.mirrors.registries``; a path in it, as Harbor's and
    Artifactory's proxy projects have, prefixes the repository); the default is
    ``https://<registry>``."""

    def __init__(self, endpoints: Mapping[str, str] | None = None, timeout: float = 60, stop: threading.Event | None = None, headers: Mapping[str, str] | None = None) -> None:
        self.endpoints = dict(endpoints or {})
        self.headers = dict(headers or {})  # sent to the endpoints (a class server's token), never to a redirect
        self.stop = stop or threading.Event()  # set: pulls end at their next chunk (Ctrl-C)
        self.timeout = timeout
        self._tokens: dict[tuple[str, str], str] = {}
        self._opener = urllib.request.build_opener(_NoRedirect)

    def _url(self, ref: ImageRef, path: str) -> str:
        base = self.endpoints.get(ref.registry) or f"https://{DOCKER_HUB if ref.registry == 'docker.io' else ref.registry}"
        parts = urllib.parse.urlsplit(base)
        prefix = parts.path.strip("/")
        repository = f"{prefix}/{ref.repository}" if prefix else ref.repository
        return f"{parts.scheme}://{parts.netloc}/v2/{repository}/{path}"

    def _token(self, challenge: str, ref: ImageRef) -> str:
        params = dict(re.findall(r'(\w+)="([^"]*)"', challenge))
        if not challenge.lower().startswith("bearer") or "realm" not in params:
            raise KitError(f"{ref}: the registry asks for an authentication this kit does not speak ({challenge})")
        query = {"scope": params.get("scope") or f"repository:{ref.repository}:pull"}
        if "service" in params:
            query["service"] = params["service"]
        url = f"{params['realm']}?{urllib.parse.urlencode(query)}"
        try:
            with self._opener.open(url, timeout=self.timeout) as resp:
                body = json.loads(resp.read())
        except (urllib.error.URLError, TimeoutError, OSError, ValueError) as exc:
            raise KitError(f"{ref}: the registry's token service {params['realm']} did not give a token ({getattr(exc, 'reason', exc)})") from None
        if not isinstance(body, dict):
            raise KitError(f"{ref}: the registry's token service gave no token")
        token = body.get("token") or body.get("access_token")
        if not token:
            raise KitError(f"{ref}: the registry's token service gave no token")
        return str(token)

    @contextlib.contextmanager
    def _open(self, ref: ImageRef, path: str, accept: str = "") -> Iterator[Any]:
        """The response for ``path``: the registry's token fetched when it asks for one,
        a redirect to blob storage followed without it (and its own redirects followed)."""
        url = self._url(ref, path)
        key = (ref.registry, ref.repository)
        resp = None
        for attempt in range(2):
            headers = {**self.headers, **({"Accept": accept} if accept else {})}
            if key in self._tokens:
                headers["Authorization"] = f"Bearer {self._tokens[key]}"
            try:
                resp = self._opener.open(urllib.request.Request(url, headers=headers), timeout=self.timeout)  # noqa: S310 - registry URL
                break
            except urllib.error.HTTPError as exc:
                if exc.code == 401 and attempt == 0:
                    self._tokens[key] = self._token(exc.headers.get("WWW-Authenticate", ""), ref)
                    continue
                if exc.code in (301, 302, 303, 307, 308) and exc.headers.get("Location"):
                    target = urllib.parse.urljoin(url, exc.headers["Location"])
                    try:  # blob storage: plain HTTP, its own redirects followed
                        resp = urllib.request.urlopen(target, timeout=self.timeout)  # noqa: S310 - the registry's redirect
                        break
                    except (urllib.error.URLError, TimeoutError, OSError, ValueError) as err:
                        raise KitError(f"{ref}: {url} redirected to {target}, which failed ({getattr(err, 'reason', err)})") from None
                raise KitError(f"{ref}: {url} answered HTTP {exc.code}") from None
            except (urllib.error.URLError, TimeoutError, OSError) as exc:
                raise KitError(f"{ref}: cannot reach {url} ({getattr(exc, 'reason', exc)})") from None
        if resp is None:
            raise KitError(f"{ref}: {url} refused the registry's own token")
        with resp:
            yield resp

    def _get(self, ref: ImageRef, path: str, accept: str = "", limit: int = MAX_MANIFEST) -> tuple[bytes, str]:
        """A small document (manifest, index, token-guarded JSON), at most ``limit`` bytes."""
        with self._open(ref, path, accept) as resp:
            try:
                body = resp.read(limit + 1)
            except (OSError, TimeoutError) as exc:
                raise KitError(f"{ref}: reading {path} failed ({exc})") from None
            if len(body) > limit:
                raise KitError(f"{ref}: {path} is larger than {limit >> 20} MiB: not a manifest")
            return body, resp.headers.get("Content-Type", "")

    def platform_digest(self, ref: ImageRef, arch: str) -> str:
        """The digest (``sha256:…``) of the image manifest of ``ref`` for linux/``arch``."""
        body, media_type = self._get(ref, f"manifests/{ref.tag}", ACCEPT)
        doc = json.loads(body)
        media_type = doc.get("mediaType") or media_type.split(";")[0]
        if media_type in INDEX_TYPES or "manifests" in doc:
            return self._platform(ref, doc, arch)
        config = json.loads(self._get(ref, f"blobs/{doc['config']['digest']}")[0])
        if config.get("architecture") != arch:
            raise KitError(f"{ref}: a single-architecture image for {config.get('architecture')}, not {arch}")
        return "sha256:" + hashlib.sha256(body).hexdigest()

    def pull(self, ref: ImageRef, digest: str, store: Path, progress: Callable[[int], None] = lambda n: None, arch: str = "amd64") -> None:
        """Store the manifest ``digest`` of ``ref`` with its blobs (each verified) and tag it
        for ``arch`` (a tag held for both architectures becomes an index of both)."""
        self._store_image(ref, digest, store, progress)
        tag_image(store, f"{ref.registry}/{ref.repository}", ref.tag, digest, arch)

    def pull_pinned(self, ref: ImageRef, arch: str, store: Path, progress: Callable[[int], None] = lambda n: None) -> None:
        """Store an image named by digest (as release manifests pin them): the index, if it
        is one, and the ``arch`` image it lists, every blob verified. No tag is written:
        digest references resolve from the blobs alone."""
        if not ref.digest:
            raise KitError(f"{ref}: not pinned by digest")
        doc = json.loads(self._blob(ref, f"manifests/{ref.digest}", ref.digest, store, ACCEPT, progress))
        self._store_image(ref, self._platform(ref, doc, arch) if "manifests" in doc else ref.digest, store, progress)

    @staticmethod
    def _platform(ref: ImageRef, index: dict[str, object], arch: str) -> str:
        digest = platform_manifest(index, arch)
        if digest is None:
            raise KitError(f"{ref}: no linux/{arch} image in its index")
        return digest

    def _store_image(self, ref: ImageRef, digest: str, store: Path, progress: Callable[[int], None]) -> None:
        """The image manifest ``digest`` and its config and layers, each verified."""
        doc = json.loads(self._blob(ref, f"manifests/{digest}", digest, store, ACCEPT, progress))
        if "manifests" in doc:
            raise KitError(f"{ref}: {digest} is an index; the manifest pins one architecture's image")
        for blob in [doc["config"], *doc.get("layers", [])]:
            self._layer(ref, blob["digest"], store, progress)

    def _blob(self, ref: ImageRef, path: str, digest: str, store: Path, accept: str, progress: Callable[[int], None]) -> bytes:
        """A manifest or index, kept in the store once its digest is checked."""
        target = store / "blobs" / "sha256" / digest.removeprefix("sha256:")
        if target.is_file() and "sha256:" + sha256_file(target) == digest:
            return target.read_bytes()
        data, _ = self._get(ref, path, accept)
        got = "sha256:" + hashlib.sha256(data).hexdigest()
        if got != digest:
            raise KitError(f"{ref}: {path} has digest {got}, not the pinned {digest}; nothing was stored")
        write_atomic(target, data)
        progress(len(data))
        return data

    def _layer(self, ref: ImageRef, digest: str, store: Path, progress: Callable[[int], None]) -> None:
        """A config or layer, streamed to disk and hashed on the way (memory stays flat),
        kept only once its digest is checked; stops at the next chunk when asked to."""
        target = store / "blobs" / "sha256" / digest.removeprefix("sha256:")
        if target.is_file() and "sha256:" + sha256_file(target) == digest:
            return
        target.parent.mkdir(parents=True, exist_ok=True)
        part = target.with_name(f".{target.name}.{os.getpid()}.{threading.get_ident()}.part")
        hasher = hashlib.sha256()
        try:
            with self._open(ref, f"blobs/{digest}") as resp, part.open("wb") as out:
                while chunk := resp.read(1 << 18):
                    if self.stop.is_set():
                        raise KitError(f"{ref}: interrupted")
                    hasher.update(chunk)
                    out.write(chunk)
                    progress(len(chunk))
            got = "sha256:" + hasher.hexdigest()
            if got != digest:
                raise KitError(f"{ref}: blobs/{digest} has digest {got}, not the pinned {digest}; nothing was stored")
            part.replace(target)
        except OSError as exc:
            raise KitError(f"{ref}: storing blobs/{digest} in {store} failed ({exc.strerror or exc})") from None
        finally:
            part.unlink(missing_ok=True)
