"""Lab 02 checks: each looks at the kernel state or the file the step leaves behind."""

from labkit.labs.discovery import check, why

DIR = "/home/vagrant/lab02"


@check("namespaces_recorded", hint="Run `sudo unshare --pid --uts --fork --mount-proc sh -c 'hostname inside; hostname; ps -e' > ~/lab02/ns.txt` (step 1).")
def namespaces_recorded(nodes):
    text = nodes.text(f"{DIR}/ns.txt")
    assert text is not None, "~/lab02/ns.txt does not exist yet"
    lines = text.split("\n")
    assert lines[0].strip() == "inside", "the first line should be the hostname set inside the UTS namespace: inside"
    pids = [line.split()[0] for line in lines[2:] if line.strip() and line.split()[0].isdigit()]
    assert pids and pids[0] == "1", "inside a new PID namespace the first process is PID 1"


@check("cgroup_oom_kill", hint="Create /sys/fs/cgroup/lab02 with memory.max 32M and run a memory hog in it (step 2); `cat /sys/fs/cgroup/lab02/memory.events`.")
def cgroup_oom_kill(nodes):
    cg = nodes.first.file("/sys/fs/cgroup/lab02")
    assert cg.is_directory, "the cgroup /sys/fs/cgroup/lab02 does not exist"
    limit = nodes.first.file("/sys/fs/cgroup/lab02/memory.max").content_string.strip()
    assert limit != "max" and int(limit) <= 64 * 1024 * 1024, why("memory.max is {limit}: set a limit of at most 64M", limit=limit)
    events = dict(line.split() for line in nodes.first.file("/sys/fs/cgroup/lab02/memory.events").content_string.strip().splitlines())
    assert int(events.get("oom_kill", "0")) >= 1, "no process has been killed by the limit yet (memory.events oom_kill is 0)"


@check("overlay_mounted", hint="Mount an overlay at ~/lab02/merged (lower, upper, work) and write a file through it (step 3).")
def overlay_mounted(nodes):
    mount = nodes.first.mount_point(f"{DIR}/merged")
    assert mount.exists and mount.filesystem == "overlay", "~/lab02/merged is not an overlay mount"
    assert nodes.first.file(f"{DIR}/upper/written-through-merged.txt").exists, "write written-through-merged.txt via merged/: it must land in upper/"
    assert not nodes.first.file(f"{DIR}/lower/written-through-merged.txt").exists, "the lower layer must stay untouched"


@check("chroot_ran", hint="Copy bash and its libraries into ~/lab02/rootfs, then `sudo chroot ~/lab02/rootfs /bin/bash -c 'cd / && echo * > /chroot-was-here'` (step 4).")
def chroot_ran(nodes):
    proof = nodes.text(f"{DIR}/rootfs/chroot-was-here")
    assert proof is not None, "~/lab02/rootfs/chroot-was-here does not exist: run the command inside the chroot"
    seen = set(proof.split()) - {"chroot-was-here"}  # there when run twice
    # Inside the chroot, / is rootfs: the listing names rootfs's entries and nothing else
    # (a listing of the node's real / names etc, home, proc, usr, ...).
    rootfs = set(nodes.first.check_output(f"ls {DIR}/rootfs").split()) - {"chroot-was-here"}
    assert "bin" in seen, "the listing inside the chroot should show its own /bin"
    assert seen == rootfs, why("the listing shows {seen}, but ~/lab02/rootfs holds {rootfs}: list / from inside the chroot", seen=sorted(seen), rootfs=sorted(rootfs))


@check(
    "ctr_container_ran",
    hint="Find the image with `sudo ctr images ls -q`, run it with `sudo ctr run --rm IMAGE hello /bin/echo hello from a container`, output to ~/lab02/ctr.txt (step 5).",
)
def ctr_container_ran(nodes):
    out = nodes.text(f"{DIR}/ctr.txt")
    assert out is not None, "~/lab02/ctr.txt does not exist yet"
    assert out.strip() == "hello from a container", "ctr.txt should hold the container's output: hello from a container"
    images = nodes.first.run("sudo ctr images ls -q").stdout
    assert nodes.image_ref in images.split(), why("containerd has no image {image}: `./kit lab.reset 02` brings back the lab's start, where it is", image=nodes.image_ref)
