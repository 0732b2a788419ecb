"""The class's progress, kept by the instructor's server in one SQLite file (it survives a
restart): one record per student, node host and lab, the last check results and when
they last changed.

What a student sends (``Report``) is validated before anything is stored: short names
without control characters, a lab id, at most ``MAX_CHECKS`` check ids with ✓/✗, and the
time the checks ran. A report older than the one stored (a student catching up after
being offline, sent out of order) changes nothing.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from labkit.errors import KitError

MAX_CHECKS = 40
EARLIEST = 1_600_000_000  # 2020-09: no report of this kit is older
Name = Annotated[str, Field(min_length=1, max_length=64)]


class Report(BaseModel):
    """One `lab.check` run of one student, as the student's kit posts it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    student: Name
    host: Name
    lab: Annotated[str, Field(pattern=r"^[0-9]{2}$")]
    checks: Annotated[dict[Annotated[str, Field(pattern=r"^[a-z0-9_]{1,48}$")], bool], Field(max_length=MAX_CHECKS)]
    at: float  # when the checks ran (the student's clock, seconds since the epoch)

    @field_validator("student", "host")
    @classmethod
    def _printable(cls, value: str) -> str:
        if not value.isprintable() or value != value.strip():
            raise ValueError("must be printable text without leading or trailing spaces")
        return value

    @field_validator("at")
    @classmethod
    def _sane_time(cls, value: float) -> float:
        if not EARLIEST <= value <= time.time() + 86_400:
            raise ValueError("is not a time this report can have been made at")
        return value


def parse_report(body: bytes) -> Report:
    """A report from a request body, or KitError saying what is wrong with it."""
    try:
        return Report.model_validate_json(body)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "the report"
        raise KitError(f"{where}: {first['msg']}") from None


@dataclass(frozen=True)
class Row:
    """One student's line on the progress page: the lab they reported last."""

    student: str
    host: str
    lab: str
    checks: dict[str, bool]
    checked_at: float
    changed_at: float

    @property
    def key(self) -> str:
        return json.dumps([self.student, self.host])

    @property
    def done(self) -> bool:
        return bool(self.checks) and all(self.checks.values())

    def as_json(self) -> dict[str, object]:
        return {
            "key": self.key,
            "student": self.student,
            "host": self.host,
            "lab": self.lab,
            "checks": self.checks,
            "checked_at": self.checked_at,
            "changed_at": self.changed_at,
            "done": self.done,
        }


SCHEMA = """
CREATE TABLE IF NOT EXISTS progress (
    student TEXT NOT NULL,
    host TEXT NOT NULL,
    lab TEXT NOT NULL,
    checks TEXT NOT NULL,
    checked_at REAL NOT NULL,
    changed_at REAL NOT NULL,
    PRIMARY KEY (student, host, lab)
)
"""


class Roster:
    """The progress database (one file; safe across the server's threads)."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute(SCHEMA)
        except sqlite3.Error as exc:
            raise KitError(f"cannot open the class's progress database {path}: {exc}. Move it away to start a new one") from None
        self._mutex = threading.Lock()

    def record(self, report: Report) -> Row | None:
        """Store ``report``; the student's row when it is now their latest, else None (an
        older report, or one that repeats what is stored)."""
        with self._mutex:
            old = self._db.execute("SELECT checks, checked_at, changed_at FROM progress WHERE student=? AND host=? AND lab=?", (report.student, report.host, report.lab)).fetchone()
            if old is not None and report.at <= old[1]:
                return None
            changed_at = old[2] if old is not None and json.loads(old[0]) == report.checks else report.at
            self._db.execute(
                "INSERT OR REPLACE INTO progress VALUES (?, ?, ?, ?, ?, ?)",
                (report.student, report.host, report.lab, json.dumps(report.checks, sort_keys=True), report.at, changed_at),
            )
        return next((r for r in self.rows() if (r.student, r.host) == (report.student, report.host) and r.lab == report.lab), None)

    def rows(self) -> list[Row]:
        """Each student's latest lab, by name."""
        with self._mutex:
            found = self._db.execute("SELECT student, host, lab, checks, checked_at, changed_at FROM progress ORDER BY checked_at").fetchall()
        latest: dict[tuple[str, str], Row] = {}
        for student, host, lab, checks, checked_at, changed_at in found:
            latest[(student, host)] = Row(student, host, lab, json.loads(checks), checked_at, changed_at)
        return sorted(latest.values(), key=lambda r: (r.student.casefold(), r.host))

    def close(self) -> None:
        with self._mutex:
            self._db.close()
