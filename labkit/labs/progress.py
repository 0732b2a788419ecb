"""Each lab's state for one student, kept in a local JSON file an instructor can collect."""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from labkit.errors import KitError
from labkit.labs.checks import Result
from labkit.labs.discovery import Lab

# ---------------------------------------------------------------------- progress


class Progress:
    """Each lab's state, kept in a local JSON file an instructor can collect."""

    def __init__(self, path: Path):
        self.path = path
        try:
            data = json.loads(path.read_text()) if path.exists() else {}
        except (OSError, ValueError) as exc:
            raise KitError(f"the lab progress file {path} cannot be read ({exc}): fix it, or remove it to start the record afresh") from None
        self.data: dict[str, dict[str, Any]] = data if isinstance(data, dict) else {}

    def save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.data, indent=2, sort_keys=True) + "\n")
        tmp.replace(self.path)

    def started(self, lab: Lab) -> None:
        entry = self.data.setdefault(lab.id, {})
        entry.setdefault("started", _now())
        self.save()

    def checked(self, lab: Lab, results: list[Result]) -> None:
        entry = self.data.setdefault(lab.id, {})
        entry["checks"] = {r.id: r.ok for r in results}
        entry["last_check"] = _now()
        if all(r.ok for r in results):
            entry.setdefault("passed", _now())
        self.save()

    def solved(self, lab: Lab) -> None:
        """`lab.solve` did the steps (the instructor sees it beside the student's own checks)."""
        entry = self.data.setdefault(lab.id, {})
        entry["solved_by_kit"] = _now()
        self.save()

    def reset(self, lab: Lab) -> None:
        entry = self.data.setdefault(lab.id, {})
        entry.pop("checks", None)
        entry["reset"] = _now()
        self.save()

    def status(self, lab: Lab, language: str = "en") -> str:
        from labkit.labs.words import say_in

        entry = self.data.get(lab.id)
        if not entry:
            return say_in(language, "not_started")
        if "passed" in entry:
            return say_in(language, "passed_solved" if entry.get("solved_by_kit", "~") <= entry["passed"] else "passed")
        checks: Mapping[str, bool] = entry.get("checks", {})
        done = sum(1 for ok in checks.values() if ok)
        return say_in(language, "in_progress", done=done, total=len(checks)) if checks else say_in(language, "started_only")


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")
