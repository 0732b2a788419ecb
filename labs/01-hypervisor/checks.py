"""Lab 01 checks: each reads what the student recorded and compares it with the node itself."""

from labkit.labs.discovery import check, why

DIR = "/home/vagrant/lab01"


def _recorded(nodes, name):
    text = nodes.text(f"{DIR}/{name}")
    assert text is not None, why("{path} does not exist yet", path=f"{DIR}/{name}")
    return text.strip()


@check("virt_recorded", hint="Run `systemd-detect-virt > ~/lab01/virt.txt` on the node (step 1).")
def virt_recorded(nodes):
    actual = nodes.first.check_output("systemd-detect-virt || true")
    assert _recorded(nodes, "virt.txt") == actual, why("virt.txt does not say {actual!r}", actual=actual)


@check("virtio_recorded", hint="List the virtio drivers: `ls /sys/bus/virtio/drivers > ~/lab01/virtio.txt` (step 2).")
def virtio_recorded(nodes):
    recorded = set(_recorded(nodes, "virtio.txt").split())
    actual = set(nodes.first.check_output("ls /sys/bus/virtio/drivers 2>/dev/null || true").split())
    # libvirt gives the nodes a virtio disk and NIC; VirtualBox a virtio NIC (the kit's
    # Vagrantfile asks for it) beside an emulated SATA disk.
    assert "virtio_net" in actual, "this node has no virtio NIC (is it one of the kit's VMs?)"
    assert recorded == actual, why("virtio.txt lists {recorded}, the node has {actual}", recorded=sorted(recorded), actual=sorted(actual))


@check(
    "cpu_flag_recorded",
    hint="Find the flag that betrays a hypervisor: `grep -o -w -m1 hypervisor /proc/cpuinfo > ~/lab01/cpuflag.txt` (step 3; on arm64 the guide's command records there is none).",
)
def cpu_flag_recorded(nodes):
    recorded = _recorded(nodes, "cpuflag.txt")
    if nodes.first.run("grep -q -w hypervisor /proc/cpuinfo").rc == 0:
        assert recorded == "hypervisor", "cpuflag.txt should hold the one flag a VM's x86 CPU shows: hypervisor"
    else:  # an arm64 CPU has no such flag: the guide's command says so
        assert recorded.startswith("no hypervisor flag"), "this CPU shows no hypervisor flag: run the guide's command, which records that"


@check("boot_time_recorded", hint="Save `systemd-analyze` to ~/lab01/boot.txt and compare kernel and userspace time (step 4).")
def boot_time_recorded(nodes):
    recorded = _recorded(nodes, "boot.txt").splitlines()
    assert recorded and recorded[0].startswith("Startup finished in"), "boot.txt should start with systemd-analyze's 'Startup finished in'"
    # The node's own figures for this boot: a line typed by hand does not match them.
    actual = nodes.first.check_output("systemd-analyze 2>/dev/null | head -n 1 || true").strip()
    assert recorded[0].strip() == actual, why(
        "boot.txt says {recorded!r}, but this boot's systemd-analyze says {actual!r}: save its output, do not type it", recorded=recorded[0].strip(), actual=actual
    )


@check("snapshot_taken", hint="On the host: `./kit lab.snapshot 01 mine` (step 5).")
def snapshot_taken(nodes):
    assert "lab01-mine" in nodes.snapshots(nodes.first_name), "no snapshot named mine for this lab yet"
