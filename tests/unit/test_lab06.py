"""Lab 06: the ladder's parsing, table and chart, and its checks (with lab 03's test
double for the node's files and a temporary state folder for the host's)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pytest

from labkit import labs, ladder
from labkit.errors import KitError
from tests.unit.test_labs import FakeFile, FakeHost

RECORD = """vm_boot=Startup finished in 2.101s (kernel) + 9.822s (userspace) = 11.923s
vm_mem=312456Ki
container_start_s=0.084
container_mem=1638400
pod_start_s=2.917
pod_mem=1Mi
function_start_s=4.612
function_mem=2Mi 38Mi 9Mi
"""
DIR = "/home/vagrant/lab06"
VERDICT = "The cold start of 4.6 s is the price of scaling to zero. " + "For rare, event-driven work it is worth paying; for steady traffic a warm pod is better. " * 3


@dataclass
class FakeLadderNodes:
    """Test double of labs.Nodes for lab 06: the control plane's files and the host's state folder."""

    state_dir: Path
    first: FakeHost = field(default_factory=FakeHost)
    first_name: str = "cp1"


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("Startup finished in 2.1s (kernel) + 9.8s (userspace) = 11.923s", 11.923),
        ("Startup finished in 3.2s (kernel) + 1min 2.345s (userspace) = 1min 5.545s", 65.545),
        ("... = 850ms", 0.85),
    ],
)
def test_systemd_durations_are_read(text: str, seconds: float) -> None:
    assert ladder.systemd_seconds(text) == pytest.approx(seconds)


def test_the_record_gives_four_rungs() -> None:
    rungs = {r.key: r for r in ladder.parse(RECORD)}
    assert list(rungs) == ["vm", "container", "pod", "function"]
    assert rungs["vm"].start_s == 11.923 and rungs["vm"].memory_mib == pytest.approx(305.1, abs=0.1)
    assert rungs["container"].memory_mib == pytest.approx(1.6, abs=0.1)
    assert rungs["function"].memory_mib == 49.0  # the function, queue-proxy and istio-proxy together


def test_a_missing_measurement_is_named() -> None:
    with pytest.raises(KitError, match="lacks pod_mem"):
        ladder.parse(RECORD.replace("pod_mem=1Mi", "pod_mem="))


def test_the_table_and_the_chart(tmp_path: Path) -> None:
    rungs = ladder.parse(RECORD)
    assert "function (cold start)" in ladder.table(rungs)
    data, png = ladder.save(rungs, tmp_path)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and data.exists()


LAB = labs.find(labs.discover(), "06")


def outcome(nodes: FakeLadderNodes) -> set[str]:
    return {r.id for r in labs.run_checks(LAB, nodes) if not r.ok}


def solved(tmp_path: Path) -> FakeLadderNodes:
    nodes = FakeLadderNodes(tmp_path)
    nodes.first.files[f"{DIR}/ladder.txt"] = FakeFile(exists=True, content_string=RECORD)
    nodes.first.files[f"{DIR}/verdict.txt"] = FakeFile(exists=True, content_string=VERDICT)
    ladder.save(ladder.parse(RECORD), tmp_path)
    return nodes


def test_every_check_fails_before_and_passes_after(tmp_path: Path) -> None:
    assert outcome(FakeLadderNodes(tmp_path)) == {"rungs_measured", "chart_drawn", "verdict_written"}
    assert outcome(solved(tmp_path)) == set()


def test_a_chart_older_than_the_measurements_is_caught(tmp_path: Path) -> None:
    nodes = solved(tmp_path)
    nodes.first.files[f"{DIR}/ladder.txt"] = FakeFile(exists=True, content_string=RECORD.replace("pod_start_s=2.917", "pod_start_s=3.5"))
    assert outcome(nodes) == {"chart_drawn"}


def test_an_implausible_measurement_and_a_thin_verdict_are_caught(tmp_path: Path) -> None:
    nodes = solved(tmp_path)
    nodes.first.files[f"{DIR}/ladder.txt"] = FakeFile(exists=True, content_string=RECORD.replace("container_start_s=0.084", "container_start_s=30"))
    nodes.first.files[f"{DIR}/verdict.txt"] = FakeFile(exists=True, content_string="serverless is good")
    assert outcome(nodes) == {"rungs_measured", "chart_drawn", "verdict_written"}
