"""Shared by the tests of the Kubernetes labs' checks: recorded API responses and a test
double of what the checks see."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from labkit.labs import checks as labs_checks
from labkit.labs import discovery
from tests.unit.doubles import FakeFile, FakeHost, ReadsFiles

DATA = Path(__file__).with_name("data")


@dataclass
class FakeCluster(ReadsFiles):
    """Test double of context.CheckContext for Kubernetes labs: recorded API answers, fake files."""

    responses: dict[str, Any]
    first: FakeHost = field(default_factory=FakeHost)
    first_name: str = "cp1"

    def api(self, path: str) -> dict[str, Any] | None:
        found = self.responses.get(path)
        return copy.deepcopy(found) if found is not None else None


def recording(lab_id: str, name: str) -> dict[str, Any]:
    """tests/unit/data/labNN/<name>.yaml: API path → the JSON the API server answered."""
    return yaml.safe_load((DATA / f"lab{lab_id}" / f"{name}.yaml").read_text())


def cluster(lab_id: str, name: str, files: dict[str, str] | None = None) -> FakeCluster:
    host = FakeHost(files={path: FakeFile(exists=True, content_string=text) for path, text in (files or {}).items()})
    return FakeCluster(recording(lab_id, name), host)


def failing(lab: discovery.Lab, nodes: Any) -> set[str]:
    """The ids of the checks that fail; a check must fail with its own message, not crash."""
    results = labs_checks.run_checks(lab, nodes)
    crashed = [f"{r.id}: {r.detail}" for r in results if not r.ok and r.detail.split(":")[0].endswith(("Error", "Exception"))]
    assert crashed == [], "a check must fail with its own message, not crash"
    return {r.id for r in results if not r.ok}


@dataclass
class RecordedLab:
    """One lab's recordings and files: `recording(name)`, the `solved()` cluster, `failing(nodes)`."""

    lab_id: str
    files: dict[str, str]

    @property
    def lab(self) -> discovery.Lab:
        return discovery.find(discovery.discover(), self.lab_id)

    def recording(self, name: str) -> dict[str, Any]:
        return recording(self.lab_id, name)

    def solved(self) -> FakeCluster:
        return cluster(self.lab_id, "solved", self.files)

    def failing(self, nodes: Any) -> set[str]:
        return failing(self.lab, nodes)
