"""Resolution: one resolved form, derived IPs, override merge, provider and driver choice."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import yaml

from labkit.cluster.config import deep_merge, load, override_path
from labkit.cluster.resolved import HostContext
from tests.unit.configs import LIBVIRT_HOST, VALID, write

ROOT = Path(__file__).resolve().parents[3]


def test_node_ips_are_derived_from_the_cidr(tmp_path: Path) -> None:
    r = load(write(tmp_path, VALID), HostContext())
    assert [n.ip for n in r.nodes] == ["192.168.56.11", "192.168.56.12"]
    assert r.control_plane.name == "cp1"
    assert [w.name for w in r.workers] == ["worker1"]


def test_given_ips_are_kept_and_derivation_skips_nothing(tmp_path: Path) -> None:
    data = yaml.safe_load(VALID)
    data["nodes"][1]["ip"] = "192.168.56.50"
    r = load(write(tmp_path, yaml.safe_dump(data)), HostContext())
    assert [n.ip for n in r.nodes] == ["192.168.56.11", "192.168.56.50"]


def test_override_is_deep_merged_and_lists_replaced(tmp_path: Path) -> None:
    override = "network:\n  first_host: 21\nnodes:\n  - {name: solo, role: control-plane, cpus: 2, memory: 4096}\n"
    r = load(write(tmp_path, VALID, override), HostContext())
    assert [(n.name, n.ip) for n in r.nodes] == [("solo", "192.168.56.21")]
    assert str(r.config.network.cidr) == "192.168.56.0/24"  # kept from the base file
    assert r.sources == (str(tmp_path / "sandbox.yml"), str(tmp_path / "sandbox.local.yml"))


def test_deep_merge_does_not_mutate_its_inputs() -> None:
    base = {"a": {"b": 1, "c": 2}, "l": [1, 2]}
    merged = deep_merge(base, {"a": {"c": 3}, "l": [9]})
    assert merged == {"a": {"b": 1, "c": 3}, "l": [9]}
    assert base == {"a": {"b": 1, "c": 2}, "l": [1, 2]}


def test_override_path_sits_beside_the_config() -> None:
    assert override_path(Path("/x/sandbox.yml")) == Path("/x/sandbox.local.yml")


@pytest.mark.parametrize(
    ("system", "providers", "expected"),
    [
        ("Linux", ("libvirt", "virtualbox"), "libvirt"),
        ("Linux", ("virtualbox",), "virtualbox"),
        ("Darwin", ("virtualbox",), "virtualbox"),
        ("Linux", (), "libvirt"),
        ("Windows", (), "virtualbox"),
    ],
)
def test_auto_provider(tmp_path: Path, system: str, providers: tuple[str, ...], expected: str) -> None:
    text = VALID.replace("provider: libvirt", "provider: auto")
    assert load(write(tmp_path, text), HostContext(system=system, providers=providers)).provider == expected


@pytest.mark.parametrize(("has_kvm", "driver"), [(True, "kvm"), (False, "qemu")])
def test_auto_libvirt_driver(tmp_path: Path, has_kvm: bool, driver: str) -> None:
    assert load(write(tmp_path, VALID), HostContext(has_kvm=has_kvm)).libvirt_driver == driver


def test_resolved_form_has_what_the_vagrantfile_reads(tmp_path: Path) -> None:
    d = load(write(tmp_path, VALID), HostContext()).to_dict()
    json.dumps(d)  # JSON-ready
    vagrantfile = (ROOT / "Vagrantfile").read_text()
    for key in ("box", "boot_timeout", "nodes", "network", "libvirt", "sources", "name"):
        assert key in d
        assert f'"{key}"' in vagrantfile
    for key in ("netmask",):
        assert key in d["network"] and f'"{key}"' in vagrantfile
    for key in ("driver", "management_cidr", "management_network_name", "private_network_name", "storage_pool"):
        assert key in d["libvirt"] and f'"{key}"' in vagrantfile
    assert d["network"]["host_ip"] == "192.168.56.1"


@pytest.mark.parametrize("name", ["sandbox.yml", "tests/e2e/ci-cluster.yml"])
def test_shipped_configs_are_valid(name: str) -> None:
    r = load(ROOT / name, HostContext())
    assert r.control_plane


def test_default_config_fits_a_16_gib_laptop() -> None:
    r = load(ROOT / "sandbox.yml", HostContext())
    assert sum(n.memory for n in r.nodes) <= 8 * 1024
    assert r.enabled_layers() == ["kubernetes", "istio", "knative"]


def test_an_override_says_which_lists_it_replaced_and_what_it_dropped(tmp_path: Path) -> None:
    override = "nodes:\n  - {name: cp1, role: control-plane, cpus: 2, memory: 4096}\n"
    resolved = load(write(tmp_path, VALID, override), HostContext())
    assert [n.name for n in resolved.nodes] == ["cp1"]
    assert resolved.extra["notes"] == [
        "nodes: the override's 1 entries replace the 2 of the base (dropped: worker1)",
        "cp1 is the only node: its NoSchedule taint is left off, so the layers' workloads run on the control plane",
    ]
    same = load(write(tmp_path, VALID, "layers: {istio: false, knative: false}\n"), HostContext())
    assert same.extra["notes"] == []


def test_paths_are_what_they_stand_for_and_tilde_is_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from labkit.cluster.schema import ConfigError

    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    resolved = load(write(tmp_path, VALID + "cache: {dir: ~/labkit-cache}\n"), HostContext())
    assert resolved.cache_dir == tmp_path / "home" / "labkit-cache"
    (tmp_path / "a-file").write_text("not a folder\n")
    (tmp_path / "a-folder").mkdir()
    with pytest.raises(ConfigError) as err:
        load(write(tmp_path, VALID + "cache: {dir: a-file, overlays: [a-folder]}\n"), HostContext())
    assert "cache.dir = 'a-file'" in str(err.value) and "is a file, not a folder" in str(err.value)
    assert "cache.overlays[0] = 'a-folder': is a folder, not a manifest file" in str(err.value)


def test_resolving_writes_the_vagrantfiles_input_only_when_it_changed(tmp_path: Path) -> None:
    from labkit.cluster.kit import Kit

    path = write(tmp_path, VALID)
    Kit(config_path=path, state_dir=tmp_path / "state", say=lambda _: None).resolve(LIBVIRT_HOST)
    written = tmp_path / "state/resolved.json"
    os.utime(written, (1, 1))
    Kit(config_path=path, state_dir=tmp_path / "state", say=lambda _: None).resolve(LIBVIRT_HOST)  # e.g. `status`
    assert written.stat().st_mtime == 1  # untouched
    path.write_text(VALID.replace("name: sandbox", "name: other"))
    Kit(config_path=path, state_dir=tmp_path / "state", say=lambda _: None).resolve(LIBVIRT_HOST)
    assert json.loads(written.read_text())["name"] == "other"
