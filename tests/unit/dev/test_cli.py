"""The CLI end to end without VMs: expected failures are messages, and a bad config
creates nothing. `vagrant` here is a recording test double on PATH (FAKE_VAGRANT)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
FAKE_VAGRANT = """#!/bin/sh
# Recording test double for vagrant: logs its arguments, answers nothing.
echo "$@" >> "$FAKE_VAGRANT_LOG"
exit 0
"""


@pytest.fixture
def fake_env(tmp_path: Path) -> dict[str, str]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake = bin_dir / "vagrant"
    fake.write_text(FAKE_VAGRANT)
    fake.chmod(0o755)
    return {
        **os.environ,
        "PATH": f"{bin_dir}:{os.environ['PATH']}",
        "FAKE_VAGRANT_LOG": str(tmp_path / "vagrant.log"),
        "LABKIT_STATE_DIR": str(tmp_path / "state"),
    }


# Queries the kit may make while reading host facts; anything else would change state.
READ_ONLY = {"plugin list", "--version"}


def vagrant_calls(env: dict[str, str]) -> set[str]:
    log = Path(env["FAKE_VAGRANT_LOG"])
    return set(log.read_text().splitlines()) if log.exists() else set()


def kit(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "labkit", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False)


@pytest.mark.parametrize("command", ["up", "provision", "status", "destroy --yes", "halt", "config"])
def test_bad_config_stops_every_command_before_anything_is_created(tmp_path: Path, fake_env: dict[str, str], command: str) -> None:
    bad = tmp_path / "sandbox.yml"
    bad.write_text((ROOT / "sandbox.yml").read_text().replace("memory: 2560", "memory: 1024", 1))
    proc = kit({**fake_env, "LABKIT_CONFIG": str(bad)}, *command.split())
    assert proc.returncode == 1
    assert "nodes[0].memory = 1024" in proc.stderr
    assert "2048 MiB a control-plane needs for the kubernetes layer" in proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout
    assert vagrant_calls(fake_env) <= READ_ONLY, "vagrant was asked to change something"
    assert not (Path(fake_env["LABKIT_STATE_DIR"]) / "resolved.json").exists()


def test_missing_config_file_is_a_message(tmp_path: Path, fake_env: dict[str, str]) -> None:
    proc = kit({**fake_env, "LABKIT_CONFIG": str(tmp_path / "nope.yml")}, "config")
    assert proc.returncode == 1
    assert "cannot read" in proc.stderr and "nope.yml" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_config_writes_the_resolved_form(tmp_path: Path, fake_env: dict[str, str]) -> None:
    proc = kit(fake_env, "config")
    assert proc.returncode == 0, proc.stderr
    assert "is valid" in proc.stdout
    assert (Path(fake_env["LABKIT_STATE_DIR"]) / "resolved.json").exists()


def test_ssh_to_an_unknown_node_names_the_nodes(fake_env: dict[str, str]) -> None:
    proc = kit(fake_env, "ssh", "nosuchnode")
    assert proc.returncode == 1
    assert "no node named 'nosuchnode'; the nodes are: cp1, worker1, worker2" in proc.stderr


def test_destroy_without_yes_refuses_when_not_interactive(fake_env: dict[str, str]) -> None:
    proc = kit(fake_env, "destroy")
    assert proc.returncode == 1
    assert "pass --yes" in proc.stderr
    assert vagrant_calls(fake_env) <= READ_ONLY


def test_every_task_is_documented() -> None:
    from labkit.cli import namespace

    def walk(coll):  # type: ignore[no-untyped-def]
        yield from coll.tasks.values()
        for sub in coll.collections.values():
            yield from walk(sub)

    for t in walk(namespace):
        assert t.__doc__ or t.body.__doc__, t.name
        params = [p for p in t.body.__code__.co_varnames[1 : t.body.__code__.co_argcount]]
        for p in params:
            assert p in t.help, f"{t.name}: no help for --{p}"


def test_every_molecule_scenario_is_run_by_the_suite() -> None:
    from labkit.dev.molecule import SCENARIOS

    root = Path(__file__).resolve().parents[3] / "molecule"
    assert sorted(SCENARIOS) == sorted(p.parent.name for p in root.glob("*/molecule.yml"))


FAKE_KIT = """#!/bin/sh
# Recording test double for ./kit: logs the arguments it was handed.
echo "$@" > "$(dirname "$0")/kit.args"
"""


def test_a_bare_invoke_hands_the_command_over_to_kit(tmp_path: Path) -> None:
    """tasks.py under an Invoke whose Python lacks the kit's requirements (here: no
    labkit importable at all) re-runs the same command through ./kit, which builds .venv."""
    (tmp_path / "tasks.py").write_text((ROOT / "tasks.py").read_text())
    kit = tmp_path / "kit"
    kit.write_text(FAKE_KIT)
    kit.chmod(0o755)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "LABKIT_HANDED_OVER")}
    code = "import sys; sys.argv = ['invoke', 'up', '--locked']; import tasks"
    proc = subprocess.run(
        [sys.executable, "-I", "-c", f"import sys; sys.path.insert(0, {str(tmp_path)!r}); {code}"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    assert "handing over to ./kit" in proc.stderr
    assert (tmp_path / "kit.args").read_text().split() == ["up", "--locked"]
    again = subprocess.run(
        [sys.executable, "-I", "-c", f"import sys; sys.path.insert(0, {str(tmp_path)!r}); {code}"],
        cwd=tmp_path,
        env={**env, "LABKIT_HANDED_OVER": "1"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert again.returncode == 1 and "the kit's environment is broken" in again.stderr and "Traceback" not in again.stderr
