"""Debian packages for the nodes, pinned with Debian's own checksums, and CI's stand-ins.

``lock()`` resolves the packages the roles install (``*_packages`` in the roles'
defaults) with their dependencies against a Debian suite, and writes
``labkit/artifacts-debs.yml``: one artifact per package with its pool URL and the
sha256 from the suite's Packages index (which apt verifies against the signed Release
file).  The host serves them to the guests as a flat apt repository.

``build_standins()`` is for CI only, where upstream release files cannot be downloaded:
it takes containerd 2.x, runc and the CNI plugins from Debian's .debs and repacks them
in the layout of the upstream release files, writing an overlay manifest with their
own checksums.  They are **stand-ins**, marked so everywhere they appear.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import re
import tarfile
import tempfile
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from labkit import contract
from labkit.cache.lock import Pin
from labkit.errors import KitError
from labkit.paths import DEBS_MANIFEST, ROLES
from labkit.proc import require, run

LOCK = DEBS_MANIFEST
SAMPLE_PACKAGES = ("busybox-static",)
DEFAULT_MIRROR = "http://deb.debian.org/debian"


@dataclass(frozen=True)
class Deb:
    package: str
    version: str
    arch: str
    filename: str  # pool path
    sha256: str
    size: int
    control: str  # the Packages paragraph (for the repository index)


DEBIAN_KEYRING = Path("/usr/share/keyrings/debian-archive-keyring.gpg")


class AptTree:
    """A private apt configuration for one suite and architecture (host's apt untouched).
    With ``keyring``, apt accepts only indexes signed by a key in it (``signed-by``)."""

    def __init__(self, work: Path, suite: str, arch: str, mirror: str = DEFAULT_MIRROR, keyring: Path | None = None):
        self.work, self.suite, self.arch, self.mirror = work, suite, arch, mirror
        for sub in ("lists/partial", "cache/archives/partial"):
            (work / sub).mkdir(parents=True, exist_ok=True)
        signed = f" signed-by={keyring}" if keyring else ""
        (work / "sources.list").write_text(f"deb [arch={arch}{signed}] {mirror} {suite} main\n")

    def opts(self) -> list[str]:
        w = self.work
        return [
            f"-oDir::Etc::SourceList={w / 'sources.list'}",
            "-oDir::Etc::SourceParts=/dev/null",
            f"-oDir::State::Lists={w / 'lists'}",
            f"-oDir::Cache={w / 'cache'}",
            "-oDir::State::status=/dev/null",
            f"-oAPT::Architecture={self.arch}",
            f"-oAPT::Architectures={self.arch}",
        ]

    def update(self) -> None:
        require("apt-get", "Package pinning runs on a Debian or Ubuntu host.")
        run(["apt-get", *self.opts(), "update"], capture=True, what=f"apt-get update ({self.suite} {self.arch})")

    def _cache(self, *args: str) -> str:
        return run(["apt-cache", *self.opts(), *args], capture=True, what=f"apt-cache {' '.join(args[:2])}").stdout

    def closure(self, packages: Iterable[str]) -> list[str]:
        """The packages and their recursive Depends/PreDepends, minus those every Debian has."""
        out = self._cache("depends", "--recurse", "--no-recommends", "--no-suggests", "--no-conflicts", "--no-breaks", "--no-replaces", "--no-enhances", *packages)
        names = sorted({line.strip() for line in out.splitlines() if line and not line.startswith(" ") and not line.startswith("<")})
        return [n for n in names if n]

    def describe(self, package: str) -> Deb | None:
        text = self._cache("show", "--no-all-versions", package)
        para = text.strip().split("\n\n")[0]
        fields = dict(re.findall(r"^([\w-]+): (.*)$", para, re.MULTILINE))
        if fields.get("Priority") == "required" or "Filename" not in fields:
            return None  # in every Debian system (or virtual): no need to serve it
        return Deb(fields["Package"], fields["Version"], fields["Architecture"], fields["Filename"], fields["SHA256"], int(fields["Size"]), para + "\n")


def role_packages(roles_dir: Path = ROLES) -> list[str]:
    """Every `<role>_packages` list in the roles' defaults: the one place packages are named."""
    return sorted({p for packages in layer_packages(roles_dir).values() for p in packages})


def layer_packages(roles_dir: Path = ROLES) -> dict[str, list[str]]:
    """The roles' packages per layer, so a cluster without a layer downloads none of its packages."""
    out: dict[str, set[str]] = {}
    for role, data in contract.role_defaults(roles_dir).items():
        for key, value in data.items():
            if key.endswith("_packages") and isinstance(value, list):
                out.setdefault(contract.role_layer(role), set()).update(str(v) for v in value)
    # The labs' sample images are built on the host from Debian's busybox-static
    # (labkit/labs/samples.py): pinned here like the roles' packages, in the `labs` layer.
    out.setdefault("labs", set()).update(SAMPLE_PACKAGES)
    return {layer: sorted(packages) for layer, packages in out.items()}


def lock(suite: str, arches: Sequence[str], *, mirror: str = DEFAULT_MIRROR, target: Path = LOCK, say: Callable[[str], None] = print) -> int:
    """Resolve the roles' packages for ``suite`` and write the pinned deb manifest."""
    per_layer = layer_packages()
    packages = sorted({p for ps in per_layer.values() for p in ps})
    artifacts: dict[str, dict[str, object]] = {}
    with tempfile.TemporaryDirectory(prefix="labkit-apt-") as tmp:
        for arch in arches:
            tree = AptTree(Path(tmp) / arch, suite, arch, mirror)
            tree.update()
            base = set(tree.closure(per_layer.get("node", [])))
            layer_of = dict.fromkeys(base, "node")
            for layer, names in per_layer.items():
                if layer != "node":
                    for name in tree.closure([*per_layer.get("node", []), *names]):
                        layer_of.setdefault(name, layer)
            for name, layer in sorted(layer_of.items()):
                deb = tree.describe(name)
                if deb is None:
                    continue
                entry = artifacts.setdefault(
                    f"deb-{deb.package}", {"kind": "deb", "layer": layer, "version": deb.version, "description": f"Debian {suite} package", "versions": {deb.version: {}}}
                )
                per_version = entry["versions"]  # type: ignore[index]
                if deb.version not in per_version:  # an arch-specific version differs: keep the first
                    continue
                key = "all" if deb.arch == "all" else arch
                per_version[deb.version][key] = {"url": f"{mirror}/{deb.filename}", "sha256": deb.sha256}
    header = (
        f"# Generated by `./kit cache.lock-debs` from Debian {suite}: do not edit by hand.\n"
        f"# The packages the roles install ({', '.join(packages)}) and their dependencies,\n"
        "# minus what every Debian system has, with the sha256 of Debian's Packages index;\n"
        "# `layer` is the layer of the roles that need them.\n"
    )
    target.write_text(header + yaml.safe_dump({"artifacts": dict(sorted(artifacts.items()))}, sort_keys=False, width=200))
    say(f"pinned {len(artifacts)} package(s) for {', '.join(arches)} in {target}")
    return len(artifacts)


# --------------------------------------------------------------------------- Debian moves on


class MovedDebs:
    """When a pinned .deb is gone from the mirror (a point release or a security update
    superseded it), find the package's current version through the suite's index, which
    apt only accepts signed by a key of ``keyring`` (Debian's archive keys by default):
    apt's own chain of trust, InRelease → Packages → the .deb's sha256.

    Called by ``cache.fetch`` for each such package; the result is recorded in the cache's
    lock as a pin that moved, and ``./kit cache.lock-debs`` refreshes the repository's."""

    def __init__(self, suite: str, keyring: Path | None = None, say: Callable[[str], None] = print) -> None:
        self.suite = suite
        self.keyring = keyring or DEBIAN_KEYRING
        self.say = say
        self._trees: dict[tuple[str, str], AptTree] = {}
        self._mutex = threading.Lock()
        self._tmp = tempfile.TemporaryDirectory(prefix="labkit-moved-")

    def _tree(self, mirror: str, arch: str) -> AptTree:
        with self._mutex:
            tree = self._trees.get((mirror, arch))
            if tree is None:
                if not self.keyring.is_file():
                    raise KitError(f"cannot check Debian's signed index: no keyring at {self.keyring} (Debian/Ubuntu: apt install debian-archive-keyring)")
                tree = AptTree(Path(self._tmp.name) / f"{len(self._trees)}", self.suite, arch, mirror, keyring=self.keyring)
                tree.update()
                self._trees[(mirror, arch)] = tree
            return tree

    def __call__(self, item: Any, mirrors: Any) -> Pin:
        package = item.name.removeprefix("deb-")
        base, sep, _ = item.url.partition("/pool/")
        if not sep:
            raise KitError(f"{item.name}: {item.url} is not a Debian pool URL")
        arch = item.arch if item.arch != "all" else "amd64"
        tree = self._tree(mirrors.rewrite(base + "/").rstrip("/"), arch)
        deb = tree.describe(package)
        if deb is None:
            raise KitError(f"{item.name}: the pinned {item.filename} is gone from the mirror and Debian {self.suite}'s index has no {package} any more")
        if deb.filename.rsplit("/", 1)[-1] == item.filename:
            raise KitError(f"{item.name}: Debian {self.suite}'s signed index still lists {item.filename}, but the mirror does not serve it: the mirror is incomplete")
        self.say(f"  {package}: the pinned {item.version} is gone from Debian {self.suite}; taking {deb.version} through its signed index (`./kit cache.lock-debs` moves the pin)")
        return Pin(
            deb.sha256,
            "debian-index",
            item.url,
            evidence=f"Debian {self.suite} Packages index, InRelease signed by {self.keyring.name}",
            version=deb.version,
            fetch_url=f"{base}/{deb.filename}",
        )


# --------------------------------------------------------------------------- repository index


def _ar_members(data: bytes) -> dict[str, bytes]:
    """The members of an `ar` archive (the .deb container format)."""
    if not data.startswith(b"!<arch>\n"):
        raise KitError("not a Debian package (no ar header)")
    members, pos = {}, 8
    while pos + 60 <= len(data):
        header = data[pos : pos + 60]
        name = header[:16].decode().strip().rstrip("/")
        size = int(header[48:58].decode().strip())
        members[name] = data[pos + 60 : pos + 60 + size]
        pos += 60 + size + (size % 2)
    return members


def control_of(deb_path: Path) -> str:
    """The control paragraph of a .deb, read with Python only (hosts need not be Debian)."""
    members = _ar_members(deb_path.read_bytes())
    name = next((m for m in members if m.startswith("control.tar")), None)
    if name is None:
        raise KitError(f"{deb_path.name}: no control archive")
    with tarfile.open(fileobj=io.BytesIO(members[name])) as tar:
        member = next(m for m in tar.getmembers() if m.name.lstrip("./") == "control")
        fh = tar.extractfile(member)
        if fh is None:
            raise KitError(f"{deb_path.name}: unreadable control file")
        return fh.read().decode().strip() + "\n"


def packages_index(debs_dir: Path) -> str:
    """A flat repository's Packages file (`deb [trusted=yes] URL ./`) for every .deb in the folder."""
    paragraphs = []
    for deb in sorted(debs_dir.glob("*.deb")):
        body = deb.read_bytes()
        control = control_of(deb)
        extra = f"Filename: ./{deb.name}\nSize: {len(body)}\nSHA256: {hashlib.sha256(body).hexdigest()}\n"
        paragraphs.append(control + extra)
    return "\n".join(paragraphs)


# --------------------------------------------------------------------------- CI stand-ins


# name → (Debian package in sid, files to take from it → path inside the archive, archive kind)
STANDINS: dict[str, tuple[str, dict[str, str]]] = {
    "containerd": ("containerd", {"usr/bin/containerd": "bin/containerd", "usr/bin/ctr": "bin/ctr", "usr/bin/containerd-shim-runc-v2": "bin/containerd-shim-runc-v2"}),
    "runc": ("runc", {"usr/sbin/runc": "runc"}),
    "cni_plugins": ("containernetworking-plugins", {}),  # every plugin in usr/lib/cni → ./
}


def _extract(deb: Path, into: Path) -> None:
    run(["dpkg-deb", "-x", deb, into], capture=True, what=f"dpkg-deb -x {deb.name}")


def _tar(files: dict[Path, str], target: Path) -> None:
    """A reproducible tar.gz (fixed owner and mtimes, gzip header included) so a rebuild has the same checksum."""
    with target.open("wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0, compresslevel=6) as gz, tarfile.open(fileobj=gz, mode="w") as tar:
        for src, arcname in sorted(files.items(), key=lambda kv: kv[1]):
            info = tar.gettarinfo(str(src), arcname)
            info.uid = info.gid = 0
            info.uname = info.gname = "root"
            info.mtime = 0
            with src.open("rb") as fh:
                tar.addfile(info, fh)
