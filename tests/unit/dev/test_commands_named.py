"""Every `./kit <task>` the kit tells its users to run exists: in its messages (the
package, the roles' failure messages, the e2e suites' skip reasons) and in its guides
(README, the labs, the roles' READMEs). A renamed task leaves no stale advice behind."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from labkit.cli import namespace
from labkit.paths import ROOT

# as the kit writes a command for its users to copy: `./kit cache.fetch --all-arches`
NAMED = re.compile(r"`\./kit ([a-z][a-z0-9-]*(?:\.[a-z][a-z0-9-]*)?)\b")
# `./kit test --full` names the default task of a collection: `test` runs `test.all`.
COLLECTIONS = {name.split(".")[0] for name in namespace.task_names if "." in name}


def sources() -> list[Path]:
    globs = ["labkit/**/*.py", "tests/e2e/**/*.py", "roles/**/*.yml", "playbooks/*.yml", "labs/**/*.md", "labs/**/*.yml", "roles/*/README.md", "README.md", "tasks.py", "kit"]
    return sorted({p for g in globs for p in ROOT.glob(g) if p.is_file()})


def stale(text: str) -> list[str]:
    known = set(namespace.task_names) | COLLECTIONS
    return sorted({m for m in NAMED.findall(text) if m not in known})


def test_the_kit_names_many_commands() -> None:
    assert len({m for p in sources() for m in NAMED.findall(p.read_text(errors="replace"))}) > 20


def test_the_scan_finds_commands_and_a_stale_one() -> None:
    assert stale("run `./kit cache.fetch`, then `./kit up --locked` and `./kit test --full`") == []
    assert stale("run `./kit fetch.fetch` on a connected machine") == ["fetch.fetch"]


@pytest.mark.parametrize("path", sources(), ids=lambda p: str(p.relative_to(ROOT)))
def test_every_command_the_kit_names_exists(path: Path) -> None:
    assert stale(path.read_text(errors="replace")) == [], f"{path.relative_to(ROOT)} names tasks that `./kit --list` does not have"
