"""Every malformed config fails before anything is touched, with a message naming the
field, the bad value and the fix. One case per kind of mistake a user makes."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import pytest
import yaml

from labkit.cluster.config import load
from labkit.cluster.resolved import HostContext, Route
from labkit.cluster.schema import ConfigError
from tests.unit.configs import LIBVIRT_HOST, VALID, write


def with_(**changes: object) -> str:
    """VALID with top-level keys replaced."""
    data = yaml.safe_load(VALID)
    data.update(changes)
    return yaml.safe_dump(data, sort_keys=False)


def nodes(*items: dict[str, object]) -> list[dict[str, object]]:
    return list(items)


CP = {"name": "cp1", "role": "control-plane", "cpus": 2, "memory": 2560}
W1 = {"name": "worker1", "role": "worker", "cpus": 2, "memory": 2560}
VERSIONS = yaml.safe_load(VALID)["versions"]

# (id, config text, override text or None, host, [substrings the message must contain])
CASES = [
    ("yaml-syntax", VALID.replace("  cidr: 192.168.56.0/24", "cidr: 192.168.56.0/24\n   bad: [unclosed"), None, LIBVIRT_HOST, ["malformed YAML", "sandbox.yml line 8, column 7"]),
    ("yaml-duplicate-key", VALID + "name: again\n", None, LIBVIRT_HOST, ["duplicate key 'name'", "first at line 1"]),
    ("yaml-not-a-mapping", "- just\n- a list\n", None, LIBVIRT_HOST, ["top level is a list", "key: value"]),
    ("unknown-top-key", VALID + "nodez: []\n", None, LIBVIRT_HOST, ["nodez: unknown key", "did you mean `nodes`"]),
    ("unknown-node-key", with_(nodes=[{**CP, "memroy": 4096}, W1]), None, LIBVIRT_HOST, ["nodes[0].memroy: unknown key", "`memory`"]),
    ("cpus-not-a-number", with_(nodes=[{**CP, "cpus": "two"}, W1]), None, LIBVIRT_HOST, ["nodes[0].cpus = 'two'", "whole number"]),
    ("memory-with-unit", with_(nodes=[CP, {**W1, "memory": "2G"}]), None, LIBVIRT_HOST, ["nodes[1].memory = '2G'", "without quotes or units"]),
    ("role-unknown", with_(nodes=[{**CP, "role": "master"}, W1]), None, LIBVIRT_HOST, ["nodes[0].role = 'master'", "'control-plane' or 'worker'"]),
    ("provider-unknown", with_(provider="hyperv"), None, LIBVIRT_HOST, ["provider = 'hyperv'", "'libvirt'"]),
    ("nodes-empty", with_(nodes=[]), None, LIBVIRT_HOST, ["nodes = []", "must not be empty"]),
    ("nodes-missing", VALID.split("nodes:")[0] + "versions:" + VALID.split("versions:")[1], None, LIBVIRT_HOST, ["nodes: required key is missing", "add `nodes`"]),
    ("node-name-invalid", with_(nodes=[{**CP, "name": "Node_1"}, W1]), None, LIBVIRT_HOST, ["nodes[0].name = 'Node_1'", "lowercase letters"]),
    ("duplicate-names", with_(nodes=[CP, W1, {**W1}]), None, LIBVIRT_HOST, ["nodes[2].name = 'worker1'", "duplicate node name (also nodes[1])"]),
    (
        "duplicate-ips",
        with_(nodes=[{**CP, "ip": "192.168.56.20"}, {**W1, "ip": "192.168.56.20"}]),
        None,
        LIBVIRT_HOST,
        ["nodes[1].ip = '192.168.56.20'", "same address as nodes[0]"],
    ),
    ("ip-outside-cidr", with_(nodes=[{**CP, "ip": "10.1.2.3"}, W1]), None, LIBVIRT_HOST, ["nodes[0].ip = '10.1.2.3'", "not a usable address in network.cidr 192.168.56.0/24"]),
    ("ip-is-host", with_(nodes=[{**CP, "ip": "192.168.56.1"}, W1]), None, LIBVIRT_HOST, ["host's own address", "the host keeps 192.168.56.1"]),
    ("cidr-host-bits", with_(network={"cidr": "192.168.56.5/24"}), None, LIBVIRT_HOST, ["network.cidr = '192.168.56.5/24'", "use the network address 192.168.56.0/24"]),
    ("cidr-garbage", with_(network={"cidr": "192.168.300.0/24"}), None, LIBVIRT_HOST, ["network.cidr = '192.168.300.0/24'", "not a valid IPv4"]),
    ("no-control-plane", with_(nodes=[{**CP, "role": "worker"}, W1]), None, LIBVIRT_HOST, ["no node has role control-plane", "exactly one node"]),
    ("two-control-planes", with_(nodes=[CP, {**W1, "role": "control-plane"}]), None, LIBVIRT_HOST, ["nodes[1].role", "more than one control-plane"]),
    (
        "cp-memory-kubernetes",
        with_(nodes=[{**CP, "memory": 1024}, W1], layers={"kubernetes": True, "istio": False, "knative": False}),
        None,
        LIBVIRT_HOST,
        ["nodes[0].memory = 1024", "2048 MiB a control-plane needs for the kubernetes layer"],
    ),
    ("worker-memory-istio", with_(nodes=[CP, {**W1, "memory": 1536}]), None, LIBVIRT_HOST, ["nodes[1].memory = 1536", "needs for the", "at least 2048"]),
    ("cp-cpus-kubeadm", with_(nodes=[{**CP, "cpus": 1}, W1]), None, LIBVIRT_HOST, ["nodes[0].cpus = 1", "kubeadm needs at least 2 CPUs"]),
    (
        "virtualbox-range",
        with_(provider="virtualbox", network={"cidr": "10.10.0.0/24"}),
        None,
        HostContext(providers=("virtualbox",)),
        ["network.cidr = '10.10.0.0/24'", "VirtualBox 7 refuses host-only networks outside 192.168.56.0/21", "networks.conf"],
    ),
    (
        "route-collision",
        VALID,
        None,
        HostContext(routes=(Route(ipaddress.IPv4Network("192.168.56.0/23"), "wlan0"),)),
        ["network.cidr = '192.168.56.0/24'", "collides with the host route 192.168.56.0/23 on wlan0"],
    ),
    ("management-overlap", with_(libvirt={"management_cidr": "192.168.56.0/25"}), None, LIBVIRT_HOST, ["libvirt.management_cidr = '192.168.56.0/25'", "overlaps network.cidr"]),
    (
        "pod-service-overlap",
        with_(network={"cidr": "192.168.56.0/24", "pod_cidr": "10.96.0.0/16"}),
        None,
        LIBVIRT_HOST,
        ["network.service_cidr = '10.96.0.0/12'", "overlaps network.pod_cidr 10.96.0.0/16"],
    ),
    ("version-latest", with_(versions={**VERSIONS, "istio": "latest"}), None, LIBVIRT_HOST, ["versions.istio = 'latest'", "not an exact pinned version"]),
    ("version-wrong-series", with_(versions={**VERSIONS, "kubernetes": "1.35.2"}), None, LIBVIRT_HOST, ["versions.kubernetes = '1.35.2'", "outside the series", "1.36.x"]),
    ("version-yaml-float", VALID.replace("kubernetes: 1.36.4", "kubernetes: 1.36"), None, LIBVIRT_HOST, ["versions.kubernetes = 1.36", "must be a string", "quote"]),
    ("layer-dependency", with_(layers={"kubernetes": True, "istio": False, "knative": True}), None, LIBVIRT_HOST, ["layers.knative = True", "needs the istio layer"]),
    (
        "local-box-virtualbox",
        with_(provider="virtualbox", box={"name": "labkit/trixie", "local": True}),
        None,
        HostContext(providers=("virtualbox",)),
        ["box.local = True", "libvirt only"],
    ),
    ("cidr-too-small", with_(network={"cidr": "192.168.56.0/29", "first_host": 6}), None, LIBVIRT_HOST, ["nodes[1].ip", "no room for a derived address"]),
    (
        "addon-without-its-layer",
        with_(layers={"kubernetes": True, "istio": False, "knative": False}, addons={"prometheus": True}),
        None,
        LIBVIRT_HOST,
        ["addons.prometheus = True", "needs the istio layer"],
    ),
    ("grafana-needs-prometheus", with_(addons={"grafana": True}), None, LIBVIRT_HOST, ["addons.grafana = True", "Prometheus", "addons.prometheus: true"]),
    ("kiali-without-prometheus", with_(addons={"kiali": True}), None, LIBVIRT_HOST, ["addons.kiali = True", "Prometheus", "addons.prometheus: true"]),
    ("addon-unknown", with_(addons={"grafna": True}), None, LIBVIRT_HOST, ["addons.grafna: unknown key", "`grafana`"]),
    ("cni-not-in-this-version", with_(versions={**VERSIONS, "cni": "calico"}), None, LIBVIRT_HOST, ["versions.cni = 'calico'", "only flannel", "versions.cni: flannel"]),
    ("layer-not-bool", with_(layers={"kubernetes": "yes please", "istio": True, "knative": True}), None, LIBVIRT_HOST, ["layers.kubernetes = 'yes please'", "true or false"]),
    ("boot-timeout-small", with_(boot_timeout=10), None, LIBVIRT_HOST, ["boot_timeout = 10", "at least 60"]),
    ("override-yaml-syntax", VALID, "nodes: [\n", LIBVIRT_HOST, ["sandbox.local.yml line", "malformed YAML"]),
    ("override-bad-type", VALID, "network:\n  first_host: many\n", LIBVIRT_HOST, ["sandbox.yml + sandbox.local.yml", "network.first_host = 'many'", "whole number"]),
]


@pytest.mark.parametrize(("text", "override", "host", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_malformed_config_is_refused_with_a_clear_message(tmp_path: Path, text: str, override: str | None, host: HostContext, expected: list[str]) -> None:
    path = write(tmp_path, text, override)
    with pytest.raises(ConfigError) as err:
        load(path, host)
    message = str(err.value)
    for fragment in expected:
        assert fragment in message, f"{fragment!r} not in:\n{message}"
    assert "nothing was changed" in message or "malformed YAML" in message or "top level" in message
    assert "Fix:" in message


def test_there_are_at_least_twenty_cases() -> None:
    assert len(CASES) >= 20
    assert len({c[0] for c in CASES}) == len(CASES)


def test_every_problem_is_reported_at_once(tmp_path: Path) -> None:
    bad = with_(nodes=[{**CP, "memory": 512, "cpus": 1}, {**W1, "name": "cp1"}], versions={**VERSIONS, "istio": "latest"})
    with pytest.raises(ConfigError) as err:
        load(write(tmp_path, bad), LIBVIRT_HOST)
    wheres = {p.where for p in err.value.problems}
    assert {"nodes[0].memory", "nodes[0].cpus", "nodes[1].name", "versions.istio"} <= wheres


def test_a_hand_edited_classroom_block_points_back_to_join(tmp_path: Path) -> None:
    path = write(tmp_path, VALID, override='classroom: {url: "ftp://x", token: "0123456789abcdef", student: Ann}\n')
    with pytest.raises(ConfigError) as err:
        load(path, LIBVIRT_HOST)
    assert "classroom.url" in str(err.value) and "classroom.join" in str(err.value) and "hostname" not in str(err.value)
