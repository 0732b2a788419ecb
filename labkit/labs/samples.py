"""The labs' sample workloads: images built from ``labs/samples/`` into the cache.

Each image is Debian's ``busybox-static`` (a pinned package the cache holds) plus the
files of one sample folder, written by ``oci.build_image`` (reproducible: same sources,
same digest) and tagged ``labkit.local/samples/NAME:TAG``, the name the nodes pull
through the cache's registry endpoint. Nothing is downloaded here.
"""

from __future__ import annotations

import io
import lzma
import tarfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from labkit.cache import oci
from labkit.cache.debs import _ar_members
from labkit.errors import KitError
from labkit.paths import LABS

SAMPLES = LABS / "samples"
REGISTRY = "labkit.local"


@dataclass(frozen=True)
class Sample:
    name: str
    tag: str
    folder: str
    env: tuple[str, ...] = ()

    @property
    def ref(self) -> str:
        return f"{REGISTRY}/samples/{self.name}:{self.tag}"


CATALOGUE = (
    Sample("web", "v1", "web", ("VERSION=v1",)),
    Sample("web", "v2", "web", ("VERSION=v2",)),
    Sample("hello", "v1", "hello"),
    Sample("cpu", "v1", "cpu"),
)
# The image lab 02 runs with ctr: on every cluster, named in its guide.
LAB_IMAGE = CATALOGUE[0].ref

APPLETS = (
    "sh",
    "httpd",
    "hostname",
    "mkdir",
    "echo",
    "printf",
    "awk",
    "sed",
    "cat",
    "wget",
    "sleep",
    "seq",
    "sort",
    "uniq",
    "grep",
    "head",
    "tail",
    "cut",
    "tr",
    "env",
    "date",
    "ls",
    "test",
    "true",
    "false",
)


def busybox_from_deb(deb: Path) -> bytes:
    """The busybox binary inside a busybox-static .deb (read with Python alone)."""
    members = _ar_members(deb.read_bytes())
    name = next((n for n in members if n.startswith("data.tar")), None)
    if name is None:
        raise KitError(f"{deb.name} has no data.tar member")
    data = members[name]
    if name.endswith(".xz"):
        data = lzma.decompress(data)
    elif name.endswith(".zst"):
        raise KitError(f"{deb.name}: zstd-compressed packages are not supported")
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:*") as tar:
        for path in ("./usr/bin/busybox", "./bin/busybox"):
            try:
                member = tar.extractfile(path)
            except KeyError:
                continue
            if member is not None:
                return member.read()
    raise KitError(f"{deb.name} has no bin/busybox")


def files_of(sample: Sample, busybox: bytes, samples_dir: Path = SAMPLES) -> dict[str, oci.Entry]:
    root = samples_dir / sample.folder
    files: dict[str, oci.Entry] = {"bin/busybox": oci.Entry(busybox, 0o755)}
    files.update({f"bin/{applet}": oci.Entry(symlink="busybox") for applet in APPLETS})
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        rel = path.relative_to(root)
        target = "serve" if str(rel) == "serve" else f"srv/{rel}"
        files[target] = oci.Entry(path.read_bytes(), 0o755 if path.stat().st_mode & 0o111 else 0o644)
    return files


def build(cache_dir: Path, arch: str, say: Callable[[str], None] = print, samples_dir: Path = SAMPLES) -> dict[str, str]:
    """Build every sample image for ``arch`` into the cache; return ref → digest."""
    debs = sorted((cache_dir / "debs").glob(f"busybox-static_*_{arch}.deb"))
    if not debs:
        raise KitError(f"the cache has no busybox-static package for {arch}: run `./kit cache.fetch` first")
    busybox = busybox_from_deb(debs[-1])
    built = {}
    for sample in CATALOGUE:
        digest = oci.build_image(
            cache_dir / "oci", f"{REGISTRY}/samples/{sample.name}", sample.tag, files_of(sample, busybox, samples_dir), ["/serve"], arch=arch, env=list(sample.env)
        )
        built[sample.ref] = digest
        say(f"  {sample.ref} → {digest[:19]}…")
    return built


def present(cache_dir: Path) -> bool:
    return all((cache_dir / "oci/tags" / REGISTRY / "samples" / s.name / s.tag).is_file() for s in CATALOGUE)
