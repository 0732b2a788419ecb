"""The guide as the test: its sh blocks parsed per step, and the walk that holds each step to
its checks (fail before, pass after), with test doubles for the nodes and the checks."""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from labkit.errors import KitError
from labkit.labs import checks as labs_checks
from labkit.labs import discovery, guide

GUIDE = """# Lab 99

## The concept

```sh
echo not a step
```

## Steps

1. **One.**

   ```sh
   touch ~/one
   ```

   Expected output, never run:

   ```text
   one
   ```
2. **Two, host then node.**

   ```sh
   # on the host
   ./kit lab.snapshot 99 mine
   ```

   1. a nested list does not start a step

   - nor does a bullet list inside a step
   - whose items are not steps

   ```sh
   touch ~/two
   ```

## Clean-up

```sh
rm ~/one ~/two
```
"""


def fake_lab(tmp_path: Path, text: str = GUIDE, steps: int = 2) -> Any:
    (tmp_path / "README.md").write_text(text)
    spec = SimpleNamespace(steps=[SimpleNamespace(title=f"step {i}", checks=[f"c{i}"]) for i in range(1, steps + 1)])
    return SimpleNamespace(id="99", path=tmp_path, spec=spec)


def test_blocks_belong_to_the_step_whose_list_item_holds_them(tmp_path: Path) -> None:
    steps = guide.parse(fake_lab(tmp_path).path / "README.md")
    assert [s.number for s in steps] == [1, 2]
    assert [(b.where, b.script.strip().splitlines()[-1]) for b in steps[0].blocks] == [("node", "touch ~/one")]
    assert [(b.where, b.script.strip().splitlines()[-1]) for b in steps[1].blocks] == [("host", "./kit lab.snapshot 99 mine"), ("node", "touch ~/two")]
    assert steps[1].blocks[0].line == 24


def test_a_guide_that_does_not_match_lab_yml_is_named(tmp_path: Path) -> None:
    assert guide.problems(fake_lab(tmp_path)) == []
    assert "lab.yml has 3 steps, the guide's '## Steps' list has 2" in guide.problems(fake_lab(tmp_path, steps=3))[0]
    bare = GUIDE.replace("   ```sh\n   touch ~/one\n   ```\n", "")
    assert guide.problems(fake_lab(tmp_path, bare)) == [f"{tmp_path / 'README.md'}: step 1 has no ```sh block to run"]


def test_every_lab_guide_is_a_test_of_its_steps() -> None:
    for lab in discovery.discover():
        assert guide.problems(lab) == [], lab.id


@pytest.mark.skipif(shutil.which("shellcheck") is None, reason="shellcheck is not installed (./kit test installs it)")
def test_every_command_in_the_guides_passes_shellcheck() -> None:
    for lab in discovery.discover():
        for step in guide.parse(lab.path / "README.md"):
            for block in step.blocks:
                # SC2024 (sudo does not affect redirects) is what the guides want: the student's
                # file, written by the student's shell, from a command run as root.
                proc = subprocess.run(
                    ["shellcheck", "--shell=bash", "--severity=warning", "--exclude=SC2024", "-"],
                    input="set -e -o pipefail  # as labkit.labs.guide runs it\n" + block.script,
                    capture_output=True,
                    text=True,
                    check=False,
                )
                assert proc.returncode == 0, f"{lab.path}/README.md line {block.line}:\n{proc.stdout}"


@dataclass
class World:
    """Test double of a node and the checks: a step's check passes once its block ran."""

    done: set[int]
    fail_block: int | None = None
    broken_check: int | None = None

    def run_block(self, block: guide.Block) -> tuple[int, str]:
        if block.step == self.fail_block:
            return 1, "touch: cannot touch\n"
        if block.where == "node":
            self.done.add(block.step)
        return 0, ""

    def run_checks(self, ids: list[str]) -> list[labs_checks.Result]:
        return [labs_checks.Result(i, "", int(i[1:]) in self.done and int(i[1:]) != self.broken_check, "hint", "not yet", 0.0) for i in ids]


def walk(tmp_path: Path, world: World, strict: bool, said: list[str] | None = None) -> list[guide.StepRun]:
    closed: list[int] = []
    runs = guide.walk(
        fake_lab(tmp_path), SimpleNamespace(first_name="node1"), world.run_block, world.run_checks, (said if said is not None else []).append, strict, lambda: closed.append(1)
    )
    assert closed == ([1] if runs[1].ran else [])  # the host block of step 2 closes SSH sessions
    return runs


def test_a_walk_runs_each_step_and_checks_it_before_and_after(tmp_path: Path) -> None:
    said: list[str] = []
    runs = walk(tmp_path, World(set()), strict=True, said=said)
    assert [(r.number, r.ran) for r in runs] == [(1, True), (2, True)]
    assert said[said.index("  → step 1 (step 1)") + 1] == "    (node1)\n    $ touch ~/one"
    assert said[said.index("  → step 2 (step 2)") + 1] == "    (host)\n    $ ./kit lab.snapshot 99 mine"  # the marker line is not shown


def test_solve_skips_steps_done_already_and_a_strict_walk_refuses_them(tmp_path: Path) -> None:
    assert [r.ran for r in walk(tmp_path, World({1}), strict=False)] == [False, True]
    with pytest.raises(KitError, match=r"step 1 \(step 1\): its checks pass before the step is done"):
        walk(tmp_path, World({1}), strict=True)


def test_a_failing_command_names_the_guide_line(tmp_path: Path) -> None:
    with pytest.raises(KitError, match=r"step 1 \(step 1\): the command of README.md line 13 ended with status 1"):
        walk(tmp_path, World(set(), fail_block=1), strict=True)


def test_a_step_whose_checks_still_fail_after_its_commands_is_a_broken_guide(tmp_path: Path) -> None:
    with pytest.raises(KitError, match=r"step 2 \(step 2\): the guide's commands ran, but check c2 fails: not yet"):
        walk(tmp_path, World(set(), broken_check=2), strict=True)


def test_a_guide_that_does_not_match_is_refused_before_anything_runs(tmp_path: Path) -> None:
    world = World(set())
    with pytest.raises(KitError, match="the guide cannot be walked"):
        guide.walk(fake_lab(tmp_path, steps=3), SimpleNamespace(first_name="n"), world.run_block, world.run_checks, print, True)
    assert world.done == set()


def test_the_runner_runs_host_blocks_in_the_kit_folder_with_bash_strict_mode(tmp_path: Path) -> None:
    runner = guide.Runner(nodes=None, root=tmp_path, say=print)
    rc, out = runner(guide.Block(1, "host", "# on the host\npwd\nfalse\necho not reached\n", 1))
    assert (rc, out.strip()) == (1, str(tmp_path))
    assert runner(guide.Block(1, "host", "true | cat\n", 1))[0] == 0
    assert runner(guide.Block(1, "host", "false | cat\n", 1))[0] == 1  # pipefail


def test_the_runner_runs_node_blocks_over_the_nodes_connection() -> None:
    seen: list[str] = []

    class Host:
        def run(self, command: str) -> Any:
            seen.append(command)
            return SimpleNamespace(rc=0, stdout="ok\n", stderr="")

    runner = guide.Runner(nodes=SimpleNamespace(first=Host()), root=Path("/"), say=print)
    assert runner(guide.Block(1, "node", "echo 'it''s' > ~/x\n", 1)) == (0, "ok\n")
    assert seen == ["timeout 1800 bash -e -o pipefail -c 'echo '\"'\"'it'\"'\"''\"'\"'s'\"'\"' > ~/x\n'"]
