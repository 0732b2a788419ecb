"""cache_download, read as its specification (testinfra, after converge, idempotence and
the side effect that removed the unpacked binary and applied the role again)."""

from __future__ import annotations


def kept(host, prefix):
    return [f for f in host.file("/var/cache/labkit").listdir() if f.startswith(prefix)]


def test_archives_are_kept_from_the_cache(host):
    for prefix in ("containerd-", "cni-plugins-"):
        names = kept(host, prefix)
        assert len(names) == 1
        archive = host.file(f"/var/cache/labkit/{names[0]}")
        assert archive.mode == 0o644 and archive.user == "root"


def test_the_binary_is_unpacked_again_after_it_went_missing(host):
    binary = host.file("/usr/local/bin/containerd")
    assert binary.is_file and binary.mode & 0o111 and binary.user == "root"
    assert host.check_output("/usr/local/bin/containerd --version").split()[0] == "containerd"


def test_a_kept_archive_is_not_unpacked(host):
    assert not host.file("/opt/cni/bin").exists


def test_a_binary_is_installed_in_place_not_kept(host):
    runc = host.file("/usr/local/sbin/runc")
    assert runc.mode == 0o755 and runc.user == "root"
    assert "runc version" in host.check_output("/usr/local/sbin/runc --version")
    assert kept(host, "runc") == []
