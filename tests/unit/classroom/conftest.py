"""A class server on loopback for the classroom tests (a real server, real HTTP)."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from labkit.classroom import server
from labkit.classroom.store import Roster

TOKEN = "class-token-for-the-tests"  # noqa: S105 - a test class's token


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class ClassServer:
    url: str
    token: str
    cache: Path
    db: Path


@pytest.fixture
def class_server(tmp_path: Path) -> Iterator[ClassServer]:
    cache, db = tmp_path / "instructor-cache", tmp_path / "classroom/progress.sqlite3"
    cache.mkdir()
    roster = Roster(db)
    with server.serving(cache, "127.0.0.1", free_port(), TOKEN, roster) as url:
        yield ClassServer(url, TOKEN, cache, db)
    roster.close()
