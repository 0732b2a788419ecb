"""Test doubles shared by the unit tests, named as such: what a lab check sees of a node.

``FakeHost`` stands where a check gets a testinfra host (``CheckContext[name]``): files,
command outputs and mounts are set by the test. ``Node`` is the small interface the
labs' checks use of a host, so a double and testinfra's host are held to the same one.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field
from typing import Protocol


class Node(Protocol):
    """What a lab check uses of a node (testinfra's host offers it; the doubles do too)."""

    def file(self, path: str) -> FakeFile: ...

    def check_output(self, cmd: str) -> str: ...

    def run(self, cmd: str) -> FakeRun: ...

    def mount_point(self, path: str) -> FakeMount: ...


@dataclass
class FakeFile:
    exists: bool = False
    content_string: str = ""
    is_directory: bool = False
    # When the student wrote it: after every object of the recordings, unless a test says otherwise.
    mtime: datetime.datetime = datetime.datetime(2026, 11, 29, 18, 30, tzinfo=datetime.UTC)


@dataclass
class FakeMount:
    exists: bool = False
    filesystem: str = ""


@dataclass
class FakeRun:
    rc: int
    stdout: str


@dataclass
class FakeHost:
    """Test double of a testinfra host: files and command outputs set by the test."""

    files: dict[str, FakeFile] = field(default_factory=dict)
    outputs: dict[str, str] = field(default_factory=dict)
    mounts: dict[str, FakeMount] = field(default_factory=dict)

    def file(self, path: str) -> FakeFile:
        return self.files.get(path, FakeFile())

    def check_output(self, cmd: str) -> str:
        return self.outputs[cmd]

    def run(self, cmd: str) -> FakeRun:
        return FakeRun(0 if cmd in self.outputs else 1, self.outputs.get(cmd, ""))

    def mount_point(self, path: str) -> FakeMount:
        return self.mounts.get(path, FakeMount())


class ReadsFiles:
    """``CheckContext.text`` for the context doubles: the first node's file, None when it
    does not exist."""

    first: FakeHost

    def text(self, path: str, node: str | None = None) -> str | None:
        f = self.first.file(path)
        return f.content_string if f.exists else None


@dataclass
class FakeNodes(ReadsFiles):
    first: FakeHost
    snapshot_names: list[str] = field(default_factory=list)
    first_name: str = "node1"
    image_ref: str = "labkit.local/samples/web:v1"

    def snapshots(self, name: str) -> list[str]:
        return self.snapshot_names
