"""CI only: a loopback **test double of the upstream world**, and the stand-ins it serves.

CI cannot download upstream release files, images or (inside its network namespaces)
Debian's mirror.  So that the kit's *connected* path still runs end to end there, this
module builds a folder that a plain HTTP server (``python -m labkit.cache.serve DIR``) serves
as upstream would, at upstream's own paths:

- ``github.com/…``: stand-ins for containerd 2.x, runc and the CNI plugins, repacked from
  Debian's packages in the upstream release layout, each with the checksum file upstream
  publishes beside it (``.sha256sum``, ``.sha256``, runc's multi-line ``runc.sha256sum``);
- ``/v2/``: an OCI registry holding a stand-in image (busybox from Debian's
  busybox-static) as ``registry.labkit.test/standin/busybox``;
- ``deb.debian.org/debian/``: the pinned Debian packages the config needs, with a suite
  index signed by a key made for this double, where one package has *moved on*: its
  pinned .deb is gone and a newer version (the same files, rebuilt with a higher
  version) is in the signed index, as after a Debian point release.

The overlay manifest it writes lists the stand-ins at their upstream URLs **without**
checksums, so CI's first fetch pins them the way a user's does (from the checksum files,
and for the image from the registry's digest).  ``cache.mirrors`` in
``tests/e2e/ci-cluster.yml`` points the kit at the double.  Everything here is marked
``standin: true`` and shown as "(stand-in)" by ``cache.status``.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import tempfile
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from labkit import paths
from labkit.cache import manifest as cache_manifest
from labkit.cache.debs import DEFAULT_MIRROR, STANDINS, AptTree, _extract, _tar, control_of
from labkit.cache.oci import sha256_file
from labkit.cluster import host
from labkit.errors import KitError
from labkit.proc import require, run

if TYPE_CHECKING:
    from labkit.cluster.kit import Kit

REGISTRY = "registry.labkit.test"
PORT = 8791  # tests/e2e/ci-cluster.yml's cache.mirrors point here, on loopback
MOVED_PACKAGE = "ethtool"  # the package whose pin the double's Debian mirror has moved on
MOVED_SUFFIX = "+labkitci1"
KEYRING = "archive-key.gpg"


def _upstream_path(out: Path, url: str) -> Path:
    """Where the double serves ``url``: its host and path under ``out``."""
    host_path = url.split("://", 1)[1]
    return out / host_path


def _write(path: Path, data: bytes, mode: int = 0o644) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    path.chmod(mode)


def _release_files(tree: AptTree, tmp: Path, out: Path, versions: Mapping[str, str], upstream: Any, arch: str, suite: str, say: Callable[[str], None]) -> dict[str, Any]:
    """The stand-in release files at their upstream paths, each with its checksum file."""
    overlay: dict[str, Any] = {}
    for name, (package, wanted) in STANDINS.items():
        version = versions[name]
        art = upstream.artifacts.get(name)
        dl = art.versions.get(version, {}).get(arch) if art else None
        if dl is None or not dl.checksum_url:
            raise KitError(f"labkit/artifacts.yml has no {name} {version} ({arch}) with a checksum file for the stand-in to stand in for")
        deb = tree.describe(package)
        if deb is None:
            raise KitError(f"Debian {suite} has no package {package} for the {name} stand-in")
        run(["apt-get", *tree.opts(), "download", f"{package}={deb.version}"], cwd=tmp, capture=True, what=f"apt-get download {package}")
        root = tmp / name
        _extract(next(tmp.glob(f"{package}_*.deb")), root)
        target = _upstream_path(out, dl.url)
        target.parent.mkdir(parents=True, exist_ok=True)
        if name == "runc":
            shutil.copyfile(root / "usr/sbin/runc", target)
            target.chmod(0o755)
        elif name == "cni_plugins":
            _tar({p: f"./{p.name}" for p in sorted((root / "usr/lib/cni").iterdir()) if p.is_file()}, target)
        else:
            _tar({root / src: dst for src, dst in wanted.items()}, target)
        digest = sha256_file(target)
        sums = _upstream_path(out, dl.checksum_url)
        _write(sums, f"{digest}  {target.name}\n".encode())
        overlay[name] = {
            "kind": art.kind if art else "file",
            "layer": "node",
            "standin": True,
            "description": f"CI STAND-IN served by the upstream double: Debian {suite}'s {package} {deb.version} repacked as the upstream {version} release file",
            "version_key": name,
            "versions": {version: {arch: {"url": dl.url, "sha256": None, "checksum_url": dl.checksum_url}}},
        }
        say(f"double: {dl.url} ← Debian {package} {deb.version} ({digest[:12]}…), with {sums.name}")
    return overlay


def _image(tree: AptTree, tmp: Path, out: Path, arch: str, suite: str, say: Callable[[str], None]) -> dict[str, Any]:
    """A stand-in image in the double's registry (busybox from Debian's busybox-static)."""
    from labkit.cache import oci

    deb = tree.describe("busybox-static")
    if deb is None:
        raise KitError(f"Debian {suite} has no busybox-static for the stand-in image")
    run(["apt-get", *tree.opts(), "download", f"busybox-static={deb.version}"], cwd=tmp, capture=True, what="apt-get download busybox-static")
    root = tmp / "busybox"
    _extract(next(tmp.glob("busybox-static_*.deb")), root)
    found = [p for p in (root / "usr/bin/busybox", root / "bin/busybox") if p.is_file()]
    if not found:
        raise KitError(f"busybox-static {deb.version} has no bin/busybox or usr/bin/busybox")
    busybox = found[0].read_bytes()
    tag = re.sub(r"[^A-Za-z0-9_.-]", "_", deb.version)
    files = {"bin/busybox": oci.Entry(busybox, 0o755), "bin/sh": oci.Entry(symlink="busybox"), "bin/echo": oci.Entry(symlink="busybox")}
    digest = oci.build_image(out / "oci", "standin/busybox", tag, files, ["/bin/sh"], arch)
    say(f"double: registry image {REGISTRY}/standin/busybox:{tag} → {digest[:19]}…")
    return {
        "kind": "image",
        "layer": "node",
        "standin": True,
        "description": f"CI STAND-IN image in the upstream double's registry: Debian {suite}'s busybox-static {deb.version}",
        "version": tag,
        "versions": {tag: {arch: {"url": f"docker://{REGISTRY}/standin/busybox:{tag}", "sha256": None}}},
    }


def _download(url: str, sha256: str, target: Path) -> None:
    """A pinned .deb from Debian's mirror into the double, verified."""
    if target.is_file() and sha256_file(target) == sha256:
        return
    try:
        with urllib.request.urlopen(url, timeout=120) as resp:  # noqa: S310 - Debian's mirror, from the pinned manifest
            data = resp.read()
    except OSError as exc:
        raise KitError(f"cannot download {url} for the Debian double ({exc})") from None
    if hashlib.sha256(data).hexdigest() != sha256:
        raise KitError(f"{url} does not match its pin in labkit/artifacts-debs.yml")
    _write(target, data)


def _bump(deb: Path, out_dir: Path) -> Path:
    """The same package rebuilt with a higher version (what a point release looks like)."""
    require("dpkg-deb", "The Debian double is built on a Debian host (CI).")
    with tempfile.TemporaryDirectory(prefix="labkit-bump-") as tmp:
        root = Path(tmp) / "pkg"
        run(["dpkg-deb", "-R", deb, root], capture=True, what=f"dpkg-deb -R {deb.name}")
        control = root / "DEBIAN/control"
        text = control.read_text()
        version = re.search(r"^Version: (.+)$", text, re.MULTILINE)
        if version is None:
            raise KitError(f"{deb.name} has no Version field")
        new = version.group(1) + MOVED_SUFFIX
        control.write_text(text.replace(f"Version: {version.group(1)}", f"Version: {new}", 1))
        target = out_dir / deb.name.replace(f"_{version.group(1).split(':')[-1]}_", f"_{new.split(':')[-1]}_")
        run(["dpkg-deb", "--root-owner-group", "-Zxz", "-b", root, target], capture=True, what=f"dpkg-deb -b {target.name}")
    return target


def _gpg(home: Path, *args: str, data: bytes | None = None) -> bytes:
    require("gpg", "The Debian double signs its index with gpg (Debian: apt install gpg).")
    proc = subprocess.run(["gpg", "--homedir", str(home), "--batch", "--yes", *args], input=data, capture_output=True, check=False, timeout=120)
    if proc.returncode != 0:
        raise KitError(f"gpg {' '.join(args[:2])} failed: {proc.stderr.decode(errors='replace')[-500:]}")
    return proc.stdout


def stop_gpg_agent(home: Path) -> None:
    """gpg starts an agent for its home folder and leaves it running: stop the one this
    home started (`gpgconf --kill`), so nothing outlives the signing."""
    if shutil.which("gpgconf"):
        subprocess.run(["gpgconf", "--homedir", str(home), "--kill", "gpg-agent"], capture_output=True, check=False, timeout=60)


def _debian(out: Path, deb_items: Sequence[Any], suite: str, arch: str, say: Callable[[str], None]) -> str:
    """The pinned .debs at Debian's pool paths, one of them moved on, and a signed index."""
    base = out / "deb.debian.org" / "debian"
    moved = ""
    for item in deb_items:
        if "/debian/pool/" not in item.url:
            continue
        target = base / "pool" / item.url.split("/debian/pool/", 1)[1]
        _download(item.url, item.sha256, target)
        if item.name == f"deb-{MOVED_PACKAGE}":
            bumped = _bump(target, target.parent)
            target.unlink()
            moved = f"{MOVED_PACKAGE} {item.version} → {control_field(bumped, 'Version')}"
    if not moved:
        raise KitError(f"the config needs no {MOVED_PACKAGE} package: the Debian double has nothing to move on")
    paragraphs = []
    for deb in sorted((base / "pool").rglob("*.deb")):
        body = deb.read_bytes()
        rel = deb.relative_to(base)
        paragraphs.append(control_of(deb) + f"Filename: {rel}\nSize: {len(body)}\nSHA256: {hashlib.sha256(body).hexdigest()}\n")
    packages = "\n".join(paragraphs).encode()
    dist = base / "dists" / suite
    _write(dist / "main" / f"binary-{arch}" / "Packages", packages)
    entry = f"main/binary-{arch}/Packages"
    release = (
        f"Origin: labkit-ci-double\nLabel: labkit CI double of Debian\nSuite: {suite}\nCodename: {suite}\n"
        f"Date: Thu, 01 Jan 2026 00:00:00 UTC\nArchitectures: {arch}\nComponents: main\n"
        f"SHA256:\n {hashlib.sha256(packages).hexdigest()} {len(packages)} {entry}\n"
    )
    with tempfile.TemporaryDirectory(prefix="labkit-gpg-") as home:
        os.chmod(home, 0o700)
        _gpg(Path(home), "--passphrase", "", "--quick-gen-key", "labkit CI double <ci@labkit.invalid>", "ed25519", "sign", "never")
        _write(dist / "InRelease", _gpg(Path(home), "--clearsign", "--digest-algo", "SHA256", data=release.encode()))
        _write(out / KEYRING, _gpg(Path(home), "--export"))
        stop_gpg_agent(Path(home))
    say(f"double: Debian {suite} with {len(paragraphs)} package(s), index signed by a key of its own ({KEYRING}); moved on: {moved}")
    return moved


def control_field(deb: Path, field: str) -> str:
    match = re.search(rf"^{field}: (.+)$", control_of(deb), re.MULTILINE)
    return match.group(1) if match else ""


def build(
    out: Path,
    versions: Mapping[str, str],
    upstream: Any,
    deb_items: Sequence[Any],
    *,
    suite: str,
    standin_suite: str = "sid",
    arch: str = "amd64",
    mirror: str = DEFAULT_MIRROR,
    say: Callable[[str], None] = print,
) -> Path:
    """Build the double in ``out`` and write its overlay manifest; return the overlay's path."""
    require("dpkg-deb", "The upstream double is built on a Debian host (CI).")
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="labkit-double-") as tmp:
        tree = AptTree(Path(tmp) / "apt", standin_suite, arch, mirror)
        tree.update()
        overlay = _release_files(tree, Path(tmp), out, versions, upstream, arch, standin_suite, say)
        overlay["standin_image"] = _image(tree, Path(tmp), out, arch, standin_suite, say)
    _debian(out, deb_items, suite, arch, say)
    path = out / "standins.yml"
    header = "# CI-ONLY overlay: stand-ins served by the upstream test double (`./kit cache.standins`), pinned on first fetch.\n"
    path.write_text(header + yaml.safe_dump({"artifacts": overlay}, sort_keys=False, width=200))
    return path


def build_for(k: Kit, out: Path | None = None) -> Path:
    """(CI) Build the upstream test double where the config's overlay expects it."""
    resolved = k.resolve()
    if out is None:
        if not resolved.overlays:
            raise KitError("the config lists no cache.overlays: give --out, or use tests/e2e/ci-cluster.yml")
        out = resolved.overlays[0].parent
    manifest = cache_manifest.load_manifest([paths.MANIFEST, paths.DEBS_MANIFEST])
    versions = resolved.config.versions.model_dump()
    debs = [i for i in cache_manifest.plan(manifest, versions, [*resolved.enabled_layers(), "labs"], host.arch()) if i.kind == "deb"]
    return build(out, versions, manifest, debs, suite=resolved.config.box.suite, arch=host.arch(), say=k.say)
