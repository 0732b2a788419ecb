"""Parsers of tool output, on output recorded from real runs."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import pytest

from labkit.cluster.host import parse_routes, parse_vagrant_plugins
from labkit.cluster.libvirt import box_volume_prefix, parse_vol_list
from labkit.cluster.runner import HostRecap, parse_recap, total_changed
from labkit.cluster.vagrant import SshEndpoint, condense, parse_ssh_config, parse_status

REC = Path(__file__).resolve().parents[2] / "fixtures" / "recorded"


def test_vagrant_status() -> None:
    assert parse_status((REC / "vagrant-status.txt").read_text()) == {"node1": "running", "node2": "not_created"}


def test_vagrant_ssh_config() -> None:
    eps = parse_ssh_config((REC / "vagrant-ssh-config.txt").read_text())
    assert eps["node1"] == SshEndpoint("192.168.121.150", 22, "vagrant", "/tmp/kitdev/vagrant/machines/node1/libvirt/private_key")
    assert eps["node2"].identity_file == "/tmp/kit dev/vagrant/machines/node2/libvirt/private_key"


def test_condense_keeps_messages_and_thins_progress() -> None:
    raw = ["==> node1: Uploading base box image\n", "".join(f"\x1b[KProgress: {p}%\r" for p in range(0, 101)) + "\n", "==> node1: Creating image\n"]
    out: list[str] = []
    condense(raw, out.append)
    assert out[0] == "==> node1: Uploading base box image"
    assert out[-1] == "==> node1: Creating image"
    progress = [line for line in out if "progress" in line]
    assert progress[0].endswith("0%") and progress[-1].endswith("100%")
    assert len(progress) == 11


def test_condense_hides_ruby_backtraces_but_keeps_the_error() -> None:
    raw = [
        "/usr/share/rubygems-integration/all/gems/vagrant-2.3.4/lib/vagrant/action/warden.rb:48:in `call'\n",
        "/usr/share/rubygems-integration/all/gems/vagrant-2.3.4/lib/vagrant/action/builder.rb:180:in `call'\n",
        "Error while activating network: Call to virNetworkCreate failed: internal error: Network is already in use by interface virbr1.\n",
    ]
    out: list[str] = []
    condense(raw, out.append)
    assert out == ["    (2 lines of Ruby backtrace hidden)", raw[2].strip()]


def test_ansible_recap() -> None:
    recap = parse_recap((REC / "ansible-recap.txt").read_text().splitlines())
    assert recap["node1"] == HostRecap(ok=11, changed=2)
    assert recap["node2"] == HostRecap(ok=9, unreachable=1, skipped=3)
    assert total_changed(recap) == 2


def test_recap_ignores_lines_before_the_recap() -> None:
    assert parse_recap(["node1 : ok=1 changed=1", "PLAY RECAP ***"]) == {}


def test_routes_from_ip_json() -> None:
    text = '[{"dst":"default","gateway":"192.0.2.1","dev":"eth0"},{"dst":"192.168.56.0/24","dev":"virbr1"},{"dst":"10.9.8.7","dev":"tun0"}]'
    routes = parse_routes(text)
    assert [(str(r.network), r.dev) for r in routes] == [("0.0.0.0/0", "eth0"), ("192.168.56.0/24", "virbr1"), ("10.9.8.7/32", "tun0")]
    assert routes[1].network == ipaddress.IPv4Network("192.168.56.0/24")


def test_vagrant_plugins() -> None:
    assert parse_vagrant_plugins("vagrant-libvirt (0.11.2, system)\nvagrant-vbguest (0.32.0, global)\n  - Version Constraint: > 0\n") == ("vagrant-libvirt", "vagrant-vbguest")


def test_virsh_vol_list() -> None:
    text = " Name          Path\n------------------------------\n kitci-node1.img   /var/lib/libvirt/images/kitci-node1.img\n\n"
    assert parse_vol_list(text) == ["kitci-node1.img"]
    assert parse_vol_list(" Name   Path\n-----------\n\n") == []


def test_box_volume_prefix() -> None:
    assert box_volume_prefix("labkit/trixie") == "labkit-VAGRANTSLASH-trixie_vagrant_box_image"


def test_role_times_from_profile_roles() -> None:
    from labkit.cluster.runner import parse_role_times

    lines = [
        "PLAY RECAP ***",
        "ROLES RECAP ***",
        "Sunday 29 November 2026  15:04:40 +0000 (0:00:03.471)       0:00:15.921 ***",
        "=" * 20,
        "node_base ------------------ 12.34s",
        "containerd ------------------- 8.00s",
        "total ------- 20.34s",
    ]
    assert parse_role_times(lines) == {"node_base": 12.34, "containerd": 8.0}


def test_the_slowest_tasks_from_profile_tasks() -> None:
    from labkit.cluster.runner import parse_task_times

    lines = [
        "PLAY RECAP ***",
        "node1 : ok=3 changed=0",
        "TASKS RECAP ***",
        "Sunday 29 November 2026  15:04:40 +0000 (0:00:03.471)       0:00:15.921 ***",
        "=" * 20,
        "node_network : Private network | Reach every peer on its private address -- 8.93s",
        "Gathering Facts --------------------------------------------------------- 2.10s",
        "node_base : Base | Probe the node's state (one call) ----------------- 0.40s",
        "ROLES RECAP ***",
        "node_base ------------------ 12.34s",
    ]
    assert parse_task_times(lines) == [
        ("node_network : Private network | Reach every peer on its private address", 8.93),
        ("Gathering Facts", 2.1),
        ("node_base : Base | Probe the node's state (one call)", 0.4),
    ]
    assert parse_task_times(lines[:2]) == []


def test_a_failed_run_names_its_failed_tasks() -> None:
    from labkit.cluster.runner import failures

    lines = [
        "TASK [Lab files | Pull them from the kit's cache] ******",
        "ok: [node2]",
        'fatal: [node1]: FAILED! => {"msg": "ctr: failed to resolve reference"}',
        "TASK [Next] ***",
        "ok: [node1]",
    ]
    assert failures(lines) == '  TASK [Lab files | Pull them from the kit\'s cache]\n    fatal: [node1]: FAILED! => {"msg": "ctr: failed to resolve reference"}'
    assert failures(["TASK [x] ***", "ok: [n]"]) == ""


def test_vagrant_plugin_list_is_remembered_until_what_decides_it_changes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from labkit.cluster import host

    home = tmp_path / "vagrant.d"
    home.mkdir()
    monkeypatch.setenv("VAGRANT_HOME", str(home))
    monkeypatch.setattr(host.shutil, "which", lambda name: "/usr/bin/vagrant" if name == "vagrant" else None)
    asked: list[str] = []
    answers = {"now": "vagrant-libvirt (0.11.2, system)\n"}

    def fake_out(argv: list[str], timeout: float = 20) -> str:  # test double of running vagrant
        asked.append(" ".join(argv))
        return answers["now"]

    monkeypatch.setattr(host, "_out", fake_out)
    state = tmp_path / "state"
    assert host._vagrant_plugins(state) == ("vagrant-libvirt",)
    assert host._vagrant_plugins(state) == ("vagrant-libvirt",)
    assert len(asked) == 1, "the second call should come from the memo"
    # A plugin installed or removed changes the user's plugins.json: Vagrant is asked again.
    (home / "plugins.json").write_text("{}")
    answers["now"] = ""
    assert host._vagrant_plugins(state) == ()
    assert host._vagrant_plugins(state) == ()
    assert len(asked) == 3, "a list without a provider plugin is never remembered"
    # Without a state folder, Vagrant is asked every time.
    host._vagrant_plugins(None)
    assert len(asked) == 4


OVERLAY_XML = """<volume type='file'><name>kitci-node1.img</name>
  <target><path>/var/lib/libvirt/images/kitci-node1.img</path></target>
  <backingStore><path>/var/lib/libvirt/images/labkit-VAGRANTSLASH-trixie_vagrant_box_image_0_box.img</path><format type='qcow2'/></backingStore>
</volume>"""


def test_an_old_box_volume_is_retired_only_when_no_vm_disk_is_built_on_it(monkeypatch: pytest.MonkeyPatch) -> None:
    from labkit.cluster import libvirt

    base = "labkit-VAGRANTSLASH-trixie_vagrant_box_image_0_box.img"
    pool = {base: "<volume><name>base</name></volume>", "kitci-node1.img": OVERLAY_XML}
    deleted: list[str] = []

    def fake_virsh(*args: str) -> str:  # test double of virsh over a made-up pool
        if args[0] == "pool-list":
            return "default\n"
        if args[0] == "vol-list":
            return " Name   Path\n----\n" + "".join(f" {v}   /var/lib/libvirt/images/{v}\n" for v in pool)
        if args[0] == "vol-path":
            return f"/var/lib/libvirt/images/{args[1]}\n"
        if args[0] == "vol-dumpxml":
            return pool[args[1]]
        if args[0] == "vol-delete":
            deleted.append(args[1])
            del pool[args[1]]
            return ""
        raise AssertionError(args)

    monkeypatch.setattr(libvirt, "_virsh", fake_virsh)
    assert libvirt.retire_box_volumes("labkit/trixie", "default") == ([], [base])
    assert deleted == []
    del pool["kitci-node1.img"]  # the VM destroyed
    assert libvirt.retire_box_volumes("labkit/trixie", "default") == ([base], [])
    assert deleted == [base]
    assert libvirt.backing_path("not xml <") is None
