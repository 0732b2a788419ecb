"""A lab's guide as the test: the commands of its README, step by step.

The guide (``labs/NN-*/README.md``) is the one place a lab's steps are written.  Under its
``## Steps`` heading (``## 步骤`` in the Chinese guide, ``README.zh.md``), an ordered list has one item per step of ``lab.yml``; every fenced
block marked ``sh`` inside item N is a command the student types for step N.  Blocks in
other languages (``text``, ``console``) show output and are never run.  A block runs on the
lab's first node as the student's user (``sudo`` where the guide says so), unless its first
line is the comment ``# on the host``: then it runs on the host, in the kit's folder (e.g.
``./kit lab.snapshot 01 mine``).

``walk`` runs a guide's steps in order and holds each one to its checks: they must fail
before the step (``strict``: the CI harness; otherwise a step already done is skipped, which
is what `./kit lab.solve` does) and pass after it.  So the solution is the guide, and the
guide is tested wherever a lab is solved.
"""

from __future__ import annotations

import shlex
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from markdown_it import MarkdownIt

from labkit.errors import KitError

HOST_MARK = "# on the host"
STEPS_HEADINGS = ("steps", "步骤")  # the guide's `## Steps`, in each language it is written in
# The longest a block may run: a rollout or a cold start under software emulation is slow,
# a command that waits for ever is a broken guide.
BLOCK_TIMEOUT = 1800
OUTPUT_LINES = 12


@dataclass(frozen=True)
class Block:
    step: int  # 1-based, as in the guide
    where: Literal["node", "host"]
    script: str
    line: int  # 1-based line of the fence in README.md


@dataclass(frozen=True)
class Step:
    number: int
    blocks: tuple[Block, ...]


def parse(readme: Path) -> list[Step]:
    """The guide's steps with their ``sh`` blocks, from the ordered list under ``## Steps``."""
    try:
        text = readme.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise KitError(f"cannot read the guide {readme}: {exc}") from None
    tokens = MarkdownIt("commonmark").parse(text)
    in_steps = False
    lists: list[str] = []  # the lists open below the Steps heading, outermost first
    step = 0
    blocks: dict[int, list[Block]] = {}
    for i, tok in enumerate(tokens):
        if tok.type == "heading_open" and tok.tag == "h2":
            in_steps = tokens[i + 1].content.strip().lower() in STEPS_HEADINGS
            continue
        if not in_steps:
            continue
        if tok.type in ("ordered_list_open", "bullet_list_open"):
            if not lists and tok.type == "ordered_list_open":
                step = int(tok.attrs.get("start", 1) or 1) - 1
            lists.append(tok.type)
        elif tok.type in ("ordered_list_close", "bullet_list_close"):
            lists.pop()
        elif tok.type == "list_item_open" and lists == ["ordered_list_open"]:
            step += 1  # an item of the steps' own list, not of a list inside a step
            blocks.setdefault(step, [])
        elif tok.type == "fence" and lists[:1] == ["ordered_list_open"] and tok.info.split()[:1] == ["sh"]:
            first = tok.content.lstrip().split("\n", 1)[0].strip()
            where: Literal["node", "host"] = "host" if first.lower() == HOST_MARK else "node"
            blocks[step].append(Block(step, where, tok.content, (tok.map or [0])[0] + 1))
    return [Step(n, tuple(b)) for n, b in sorted(blocks.items())]


def problems(lab: Any) -> list[str]:
    """What is wrong with a lab's guide as a test: steps that do not match lab.yml, or a step
    without a command to run."""
    readme = lab.path / "README.md"
    steps = parse(readme)
    wanted = len(lab.spec.steps)
    found = []
    if len(steps) != wanted:
        found.append(f"{readme}: lab.yml has {wanted} steps, the guide's '## Steps' list has {len(steps)}")
    found += [f"{readme}: step {s.number} has no ```sh block to run" for s in steps if not s.blocks]
    return found


# ---------------------------------------------------------------------- walking a guide


@dataclass(frozen=True)
class StepRun:
    number: int
    title: str
    ran: bool  # False: its checks passed already, and the walk was not strict
    seconds: float


class Runner:
    """Runs a block where it belongs: on the lab's first node over the checks' own SSH
    connection (as the student's user), or on the host in the kit's folder."""

    def __init__(self, nodes: Any, root: Path, say: Callable[[str], None], host_env: dict[str, str] | None = None):
        self.nodes = nodes
        self.root = root
        self.say = say
        self.host_env = host_env

    def __call__(self, block: Block) -> tuple[int, str]:
        wrapped = ["timeout", str(BLOCK_TIMEOUT), "bash", "-e", "-o", "pipefail", "-c", block.script]
        if block.where == "host":
            try:
                proc = subprocess.run(wrapped, cwd=self.root, env=self.host_env, capture_output=True, text=True, check=False)
            except OSError as exc:
                return 127, str(exc)
            return proc.returncode, proc.stdout + proc.stderr
        out = self.nodes.first.run(shlex.join(wrapped))
        return out.rc, out.stdout + out.stderr


def _tail(text: str) -> str:
    lines = [line for line in text.rstrip().splitlines() if line.strip()]
    cut = lines[-OUTPUT_LINES:]
    return "\n".join(("      … " if i == 0 and len(lines) > OUTPUT_LINES else "      ") + line for i, line in enumerate(cut))


def walk(
    lab: Any,
    nodes: Any,
    run_block: Callable[[Block], tuple[int, str]],
    run_checks: Callable[[Sequence[str]], list[Any]],
    say: Callable[[str], None],
    strict: bool,
    after_host: Callable[[], None] = lambda: None,
) -> list[StepRun]:
    """Run the guide of ``lab`` step by step, holding each step to its checks."""
    found = problems(lab)
    if found:
        raise KitError("the guide cannot be walked:\n  " + "\n  ".join(found))
    runs = []
    for step, spec in zip(parse(lab.path / "README.md"), lab.spec.steps, strict=True):
        label = f"step {step.number} ({spec.title})"
        before = run_checks(spec.checks)
        if all(r.ok for r in before):
            if strict:
                raise KitError(f"lab {lab.id} {label}: its checks pass before the step is done, so they cannot tell whether it was")
            say(f"  ✓ {label}: done already")
            runs.append(StepRun(step.number, spec.title, False, 0.0))
            continue
        say(f"  → {label}")
        start = time.monotonic()
        for block in step.blocks:
            shown = "\n".join(f"    $ {line}" for line in block.script.rstrip().splitlines() if line.strip() and line.strip().lower() != HOST_MARK)
            say(f"    ({'host' if block.where == 'host' else nodes.first_name})\n{shown}")
            rc, output = run_block(block)
            if output.strip():
                say(_tail(output))
            if block.where == "host":
                after_host()  # a snapshot restored on the host ends the nodes' SSH sessions
            if rc != 0:
                raise KitError(f"lab {lab.id} {label}: the command of README.md line {block.line} ended with status {rc}" + (" (timed out)" if rc == 124 else ""))
        after = run_checks(spec.checks)
        failed = [r for r in after if not r.ok]
        if failed:
            raise KitError(f"lab {lab.id} {label}: the guide's commands ran, but check {failed[0].id} fails: {failed[0].detail}")
        seconds = time.monotonic() - start
        say(f"  ✓ {label}: {len(after)} check(s) pass ({seconds:.1f} s)")
        runs.append(StepRun(step.number, spec.title, True, seconds))
    return runs
