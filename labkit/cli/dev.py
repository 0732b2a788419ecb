"""The kit's own tooling: benchmarks, CI's upstream double, and the test suites."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from pathlib import Path

from invoke import Context, Exit, task

from labkit.cli.common import friendly, kit, say
from labkit.dev import double
from labkit.errors import KitError
from labkit.paths import ROOT


@task(
    help={
        "tags": "Re-run only these roles with all tuning off (comma-separated Ansible tags): a quicker benchmark.",
        "new_clusters": "First destroy the cluster and provision two new ones from the warm cache, Mitogen off then tuned (tens of minutes under emulation).",
    }
)
@friendly
def bench(c: Context, tags: str | None = None, new_clusters: bool = False) -> None:
    """Print provisioning figures: first run, re-runs with and without tuning, time per role (and new clusters side by side)."""
    from labkit.dev import bench as bench_mod

    bench_mod.run(kit(), say=say, tags=tags, new_clusters=new_clusters)


@task(
    name="bench",
    help={
        "boxes": "Box files to boot, the first being the one the others are compared with (default: every box in the cache's boxes folder).",
        "runs": "Boots per box (default 3; the median counts).",
    },
    iterable=["boxes"],
)
@friendly
def box_bench(c: Context, boxes: list[str] | None = None, runs: int = 3) -> None:
    """Boot each box to SSH as a new VM's first boot, side by side, and print the medians as ratios (QEMU, loopback only)."""
    from labkit.dev import boxbench

    paths = [Path(b) for b in boxes] if boxes else sorted((kit().root / ".cache/boxes").glob("*.box"))
    boxbench.run(paths, boxbench.vagrant_private_key(), runs=runs, say=say)


@task(help={"out": "Folder of the double (default: the folder of the config's first cache overlay)."})
@friendly
def standins(c: Context, out: str | None = None) -> None:
    """(CI only) build the upstream test double: stand-ins from Debian's packages at upstream paths with checksum files, a registry, a Debian mirror."""
    path = double.build_for(kit(), Path(out) if out else None)
    say(f"✓ overlay manifest: {path}; serve the double with `python -m labkit.cache.serve {path.parent} --port 8791`")


# ---------------------------------------------------------------------- tests


def _run(c: Context, cmd: list[str], **env: str) -> None:
    say("$ " + shlex.join(cmd))
    try:
        result = subprocess.run(cmd, cwd=ROOT, env={**os.environ, **env}, check=False)
    except FileNotFoundError:
        raise Exit(f"✗ `{cmd[0]}` is not installed: run `./kit test` (it installs the pinned host packages as root on Debian) or see scripts/host-packages.txt", code=1) from None
    if result.returncode != 0:
        raise Exit(f"✗ `{shlex.join(cmd)}` failed (exit {result.returncode})", code=result.returncode)


def _bin(name: str) -> str:
    return str(Path(sys.executable).parent / name)


@task
def lint(c: Context) -> None:
    """Static checks: ruff, yamllint, shellcheck, ansible-lint (production profile), playbook syntax, vagrant validate."""
    _run(c, [_bin("ruff"), "check", "."])
    _run(c, [_bin("ruff"), "format", "--check", "."])
    _run(c, [_bin("yamllint"), "--strict", "."])
    scripts = [p for p in sorted((ROOT / "scripts").iterdir()) if p.suffix != ".txt"]
    scripts += sorted(ROOT.glob("labs/*/*.sh")) + sorted(ROOT.glob("labs/samples/*/serve")) + sorted(ROOT.glob("labs/samples/*/cgi-bin/*.cgi"))
    _run(c, ["shellcheck", "kit", ".ci/run", *(str(p.relative_to(ROOT)) for p in scripts)])
    _run(c, [_bin("ansible-lint")], ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"))
    _run(c, [_bin("ansible-playbook"), "--syntax-check", "-i", "tests/fixtures/inventory.yml", "playbooks/site.yml"], ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"))
    _vagrant_validate(c)


# Tools the suites need, and the Debian package (scripts/host-packages.txt) that brings each.
HOST_TOOLS = {"vagrant": "vagrant", "shellcheck": "shellcheck", "chromium": "chromium", "chromedriver": "chromium-driver"}
FULL_TOOLS = {"virsh": "libvirt-clients", "qemu-system-x86_64": "qemu-system-x86", "debootstrap": "debootstrap", "dockerd": "docker.io", "dnsmasq": "dnsmasq-base"}


def _ensure_host_packages(c: Context, full: bool) -> None:
    """Install the pinned Debian packages the tests need when they are missing (root on Debian), else say how."""
    import shutil

    wanted = {**HOST_TOOLS, **(FULL_TOOLS if full else {})}
    missing = [tool for tool in wanted if shutil.which(tool) is None and not Path(f"/usr/sbin/{tool}").exists()]
    if not missing:
        return
    if os.geteuid() != 0 or not Path("/etc/debian_version").exists():
        raise Exit(f"✗ missing {', '.join(missing)}: install them (Debian/Ubuntu: `sudo scripts/install-host-packages`, the pins of scripts/host-packages.txt)", code=1)
    say(f"installing the pinned host packages ({', '.join(missing)} missing)")
    _run(c, [str(ROOT / "scripts/install-host-packages")])


def _vagrant_validate(c: Context) -> None:
    import shutil
    import tempfile

    if shutil.which("vagrant") is None:
        raise Exit("✗ vagrant is not installed, so the Vagrantfile cannot be validated (see `./kit doctor`)", code=1)
    with tempfile.TemporaryDirectory(prefix="labkit-validate-") as tmp:
        small = Path(tmp) / "small"  # the shipped small profile, as a student turns it on
        small.mkdir()
        shutil.copy(ROOT / "sandbox.yml", small / "sandbox.yml")
        (small / "sandbox.local.yml").write_text("profile: small\n")
        for cfg in (ROOT / "sandbox.yml", ROOT / "tests/e2e/ci-cluster.yml", small / "sandbox.yml"):
            env = {"LABKIT_CONFIG": str(cfg), "LABKIT_STATE_DIR": str(Path(tmp) / f"{cfg.parent.name}-{cfg.stem}")}
            _run(c, [sys.executable, "-m", "labkit", "config"], **env)
            _run(c, ["vagrant", "validate"], **env, VAGRANT_DOTFILE_PATH=str(Path(tmp) / "vagrant"))
        _run(c, [sys.executable, "-m", "labkit", "budget"], LABKIT_CONFIG=str(small / "sandbox.yml"), LABKIT_STATE_DIR=str(Path(tmp) / "small-budget"))


@task
def unit(c: Context) -> None:
    """Unit tests (no VMs): config rules, doctor checks, inventory, parsers, role logic."""
    _run(c, [sys.executable, "-m", "pytest", "-q", "-rs", "tests/unit"])


@task(help={"keep": "Leave the cluster running after the test (for debugging)."})
def vm_suite(c: Context, keep: bool = False) -> None:
    """End-to-end on real VMs: build the box, boot the 2-node CI cluster, re-run, destroy (needs root)."""
    env = {"LABKIT_E2E_KEEP": "1"} if keep else {}
    _run(c, [sys.executable, "-m", "pytest", "-v", "-s", "-p", "no:cacheprovider", "-m", "vm", "tests/e2e"], **env)


@task(help={"keep": "Keep the cluster afterwards (LABKIT_E2E_KEEP=1)."})
def e2e(c: Context, keep: bool = False) -> None:
    """The layers' end-to-end suites, Kubernetes then mesh and serverless (connected machine; skipped, with the reason, when the cache lacks the pinned upstream files)."""
    env = {"LABKIT_E2E_KEEP": "1"} if keep else {}
    suites = ["tests/e2e/test_kubernetes_layer.py", "tests/e2e/test_mesh_serverless.py"]
    _run(c, [sys.executable, "-m", "pytest", "-v", "-s", "-rs", "-p", "no:cacheprovider", "-m", "k8s", *suites], **env)


@task(help={"scenario": "Only this scenario (molecule/<name>); default: all of them."})
@friendly
def molecule(c: Context, scenario: str | None = None) -> None:
    """Every role's Molecule scenario on systemd containers (root): converge, idempotence, testinfra verify."""
    from labkit.dev.molecule import SCENARIOS, run_suite

    if scenario and scenario not in SCENARIOS:
        raise KitError(f"no Molecule scenario {scenario!r}: choose one of {', '.join(SCENARIOS)}")
    times = run_suite((scenario,) if scenario else SCENARIOS, say=say)
    say("molecule suite times:\n" + "\n".join(f"  {name:<34} {secs:7.1f} s" for name, secs in times.items()))


@task(help={"full": "Also every role's Molecule scenario and the end-to-end suite on real VMs (root; dockerd and libvirtd started in network namespaces when not running)."})
def everything(c: Context, full: bool = False) -> None:
    """Run the tests: static checks and unit tests; with --full also Molecule, the real two-VM end-to-end run and the Kubernetes e2e suite."""
    _ensure_host_packages(c, full)
    lint(c)
    unit(c)
    if full:
        molecule(c)
        vm_suite(c)
        e2e(c)


@task(name="bench", help={"mib": "Size of the blob (MiB, default 200).", "clients": "Concurrent pulls (default 50)."})
@friendly
def cache_bench(c: Context, mib: int = 200, clients: int = 50) -> None:
    """Benchmark the cache server's registry endpoint against CNCF Distribution (docker-registry) on loopback, side by side."""
    from labkit.dev import servebench

    results = servebench.run(mib=mib, clients=clients, say=say)
    for line in servebench.report(results, mib, clients):
        say(line)
