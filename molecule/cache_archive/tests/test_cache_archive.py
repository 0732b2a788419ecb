"""cache_archive, read as its specification (testinfra, after converge, idempotence and
the side effect that removed the binary and applied the role again)."""

from __future__ import annotations


def test_the_archive_is_kept_from_the_cache(host):
    kept = [f for f in host.file("/var/cache/labkit").listdir() if f.startswith("containerd-")]
    assert len(kept) == 1
    archive = host.file(f"/var/cache/labkit/{kept[0]}")
    assert archive.mode == 0o644 and archive.user == "root"


def test_the_binary_is_unpacked_again_after_it_went_missing(host):
    binary = host.file("/usr/local/bin/containerd")
    assert binary.is_file and binary.mode & 0o111 and binary.user == "root"
    assert host.check_output("/usr/local/bin/containerd --version").split()[0] == "containerd"
