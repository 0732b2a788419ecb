"""The labs' sample workloads: their images are built reproducibly from labs/samples, and
each sample answers as the labs expect, run with the host's busybox on loopback."""

from __future__ import annotations

import io
import lzma
import os
import shutil
import socket
import subprocess
import tarfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from labkit.cache import oci
from labkit.labs import samples


def fake_deb(path: Path, busybox: bytes) -> Path:
    """A .deb as dpkg writes it (ar: debian-binary, control, data.tar.xz) with a test payload."""
    data = io.BytesIO()
    with tarfile.open(fileobj=data, mode="w") as tar:
        info = tarfile.TarInfo("./usr/bin/busybox")
        info.size, info.mode = len(busybox), 0o755
        tar.addfile(info, io.BytesIO(busybox))
    members = [("debian-binary", b"2.0\n"), ("control.tar.xz", lzma.compress(b"")), ("data.tar.xz", lzma.compress(data.getvalue()))]
    out = b"!<arch>\n"
    for name, body in members:
        out += f"{name:<16}{0:<12}{0:<6}{0:<6}{'100644':<8}{len(body):<10}`\n".encode() + body + (b"\n" if len(body) % 2 else b"")
    path.write_bytes(out)
    return path


def test_busybox_is_read_from_the_package_with_python_alone(tmp_path: Path) -> None:
    deb = fake_deb(tmp_path / "busybox-static_1.37.0-6_amd64.deb", b"\x7fELF test busybox")
    assert samples.busybox_from_deb(deb) == b"\x7fELF test busybox"


def test_sample_images_are_reproducible_and_tagged_for_the_mirror(tmp_path: Path) -> None:
    deb = fake_deb(tmp_path / "busybox-static_1.37.0-6_amd64.deb", b"\x7fELF test busybox")
    for cache in ("a", "b"):
        (tmp_path / cache / "debs").mkdir(parents=True)
        shutil.copy(deb, tmp_path / cache / "debs" / deb.name)
    first = samples.build(tmp_path / "a", "amd64", say=lambda _: None)
    again = samples.build(tmp_path / "b", "amd64", say=lambda _: None)
    assert first == again and len(set(first.values())) == len(samples.CATALOGUE)
    assert samples.present(tmp_path / "a")
    digest = (tmp_path / "a/oci/tags/labkit.local/samples/web/v2").read_text().strip()
    assert oci.missing_blobs(tmp_path / "a/oci", digest) == []


def test_a_cache_without_busybox_says_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(samples.KitError, match=r"cache\.fetch"):
        samples.build(tmp_path, "amd64", say=lambda _: None)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def run_sample(tmp_path: Path) -> Iterator[object]:
    """Run a sample's entrypoint with the host's busybox, its root in a temporary folder."""
    procs: list[subprocess.Popen[bytes]] = []

    def start(folder: str, env: dict[str, str]) -> str:
        if shutil.which("busybox") is None:
            pytest.skip("busybox is not installed on this host")
        root = tmp_path / folder
        shutil.copytree(samples.SAMPLES / folder, root / "srv")
        (root / "bin").mkdir()
        for applet in samples.APPLETS:
            (root / "bin" / applet).symlink_to(shutil.which("busybox"))  # type: ignore[arg-type]
        port = free_port()
        serve = (root / "srv/serve").read_text().replace("/tmp/www", str(root / "www")).replace("-h /srv", f"-h {root / 'srv'}")
        serve = serve.replace('-p "${PORT:-8080}"', f"-p 127.0.0.1:{port}")
        env = {"PATH": f"{root / 'bin'}:/usr/bin:/bin", **env}
        procs.append(subprocess.Popen(["busybox", "sh", "-c", serve], env=env))
        for _ in range(50):
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    return f"http://127.0.0.1:{port}"
            time.sleep(0.1)
        pytest.fail(f"{folder} did not listen on 127.0.0.1:{port}")

    yield start
    for p in procs:
        p.terminate()
        p.wait(timeout=10)


def get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=10) as resp:  # noqa: S310 - loopback URLs of this test
        return resp.read().decode()


def test_web_names_its_version_and_pod(run_sample: object) -> None:
    url = run_sample("web", {"VERSION": "v2"})  # type: ignore[operator]
    assert get(url + "/").startswith("web v2 on ")


def test_hello_names_the_revision_that_answered(run_sample: object) -> None:
    url = run_sample("hello", {"K_REVISION": "hello-00002"})  # type: ignore[operator]
    assert get(url + "/").strip() == "Hello from hello-00002"


def test_cpu_sums_as_asked(run_sample: object) -> None:
    url = run_sample("cpu", {})  # type: ignore[operator]
    assert get(url + "/?n=1000").strip() == "sum(1..1000) = 500500"


def test_every_sample_has_an_entrypoint() -> None:
    for sample in samples.CATALOGUE:
        serve = samples.SAMPLES / sample.folder / "serve"
        assert serve.is_file() and os.access(serve, os.X_OK), sample.folder
