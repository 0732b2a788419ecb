"""Lab 06: the ladder's parsing, table and chart, and its checks (with lab 03's test
double for the node's files and a temporary state folder for the host's)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from labkit.errors import KitError
from labkit.labs import checks as labs_checks
from labkit.labs import discovery, ladder
from tests.unit.doubles import FakeFile, FakeHost, ReadsFiles

# measure.sh's record, in its order: three samples of each rung (the VM booted once).
RECORD = """# measure.sh: 3 samples per rung, 2026-11-29T18:40:00Z
function_start_s=4.612
function_mem=2Mi 9Mi
function_mem=2Mi 10Mi
function_mem=3Mi 9Mi
vm_boot=Startup finished in 2.101s (kernel) + 9.822s (userspace) = 11.923s
vm_mem=312456Ki
vm_mem=313480Ki
vm_mem=311432Ki
container_start_s=0.084
container_start_s=0.131
container_start_s=0.079
container_mem=1638400
container_mem=1638400
container_mem=1703936
pod_start_s=2.917
mesh_start_s=5.208
pod_start_s=3.402
mesh_start_s=4.871
pod_start_s=2.655
mesh_start_s=6.113
pod_mem=1Mi
mesh_mem=1Mi 42Mi
pod_mem=1Mi
mesh_mem=1Mi 43Mi
pod_mem=1Mi
mesh_mem=1Mi 42Mi
function_start_s=6.020
function_start_s=4.380
"""
# The record of measure.sh before it took samples and measured the mesh: one line per key.
OLD_RECORD = """vm_boot=Startup finished in 2.101s (kernel) + 9.822s (userspace) = 11.923s
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
class FakeLadderNodes(ReadsFiles):
    """Test double of context.CheckContext for lab 06: the control plane's files and the host's state folder."""

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


def test_the_record_gives_five_rungs_each_the_median_of_its_samples() -> None:
    rungs = {r.key: r for r in ladder.parse(RECORD)}
    assert list(rungs) == ["vm", "container", "pod", "mesh", "function"]
    assert rungs["vm"].start_s == 11.923 and rungs["vm"].samples == 1  # the VM booted once
    assert rungs["vm"].memory_mib == pytest.approx(305.1, abs=0.1)
    assert (rungs["container"].start_s, rungs["container"].samples) == (0.084, 3)
    assert rungs["container"].memory_mib == pytest.approx(1.6, abs=0.1)
    assert rungs["pod"].starts == (2.917, 3.402, 2.655) and rungs["pod"].start_s == 2.917
    assert rungs["mesh"].start_s == 5.208 and rungs["mesh"].memory_mib == 43.0  # the web container and istio-proxy together
    assert rungs["function"].starts == (4.612, 6.02, 4.38) and rungs["function"].start_s == 4.612
    assert rungs["function"].memory_mib == 12.0  # the function and queue-proxy together: 11, 12 and 12 MiB


def test_an_even_number_of_samples_gives_the_mean_of_the_middle_two() -> None:
    rungs = {r.key: r for r in ladder.parse(RECORD + "pod_start_s=3.000\n")}
    assert rungs["pod"].start_s == pytest.approx((2.917 + 3.0) / 2, abs=0.001)


def test_the_mesh_costs_the_sidecar_over_the_same_pod() -> None:
    assert ladder.mesh_cost(ladder.parse(RECORD)) == (2.291, 42.0)


def test_a_record_of_one_sample_per_key_is_read_once_it_has_the_mesh() -> None:
    with pytest.raises(KitError, match="lacks mesh_start_s, mesh_mem"):
        ladder.parse(OLD_RECORD)
    rungs = {r.key: r for r in ladder.parse(OLD_RECORD + "mesh_start_s=5.1\nmesh_mem=1Mi 42Mi\n")}
    assert (rungs["pod"].start_s, rungs["pod"].samples) == (2.917, 1)
    assert rungs["function"].memory_mib == 49.0


@pytest.mark.parametrize(("change", "message"), [(("pod_mem=1Mi", "pod_mem="), "lacks pod_mem"), (("pod_start_s=2.917", "pod_start_s=soon"), "cannot read")])
def test_a_missing_or_unreadable_measurement_is_named(change: tuple[str, str], message: str) -> None:
    with pytest.raises(KitError, match=message):
        ladder.parse(OLD_RECORD.replace(*change) + "mesh_start_s=5.1\nmesh_mem=1Mi 42Mi\n")


def test_the_table_and_the_chart(tmp_path: Path) -> None:
    rungs = ladder.parse(RECORD)
    text = ladder.table(rungs)
    assert "function (cold start)" in text and "pod + sidecar (Istio)" in text
    assert "the mesh's cost per pod (Istio's sidecar): +2.291 s to start, +42.0 MiB of memory" in text
    data, png = ladder.save(rungs, tmp_path)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and data.exists()
    drawn = {r["key"]: r for r in json.loads(data.read_text())}
    assert list(drawn) == ["vm", "container", "pod", "mesh", "function"]
    assert drawn["function"]["starts"] == [4.612, 6.02, 4.38] and drawn["function"]["start_s"] == 4.612


LAB = discovery.find(discovery.discover(), "06")


def outcome(nodes: FakeLadderNodes) -> set[str]:
    return {r.id for r in labs_checks.run_checks(LAB, nodes) if not r.ok}


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
    slow = RECORD.replace("container_start_s=0.084", "container_start_s=30").replace("container_start_s=0.079", "container_start_s=31")
    nodes.first.files[f"{DIR}/ladder.txt"] = FakeFile(exists=True, content_string=slow)
    nodes.first.files[f"{DIR}/verdict.txt"] = FakeFile(exists=True, content_string="serverless is good")
    assert outcome(nodes) == {"rungs_measured", "chart_drawn", "verdict_written"}


def _measured_and_drawn(tmp_path: Path, record: str) -> FakeLadderNodes:
    nodes = solved(tmp_path)
    nodes.first.files[f"{DIR}/ladder.txt"] = FakeFile(exists=True, content_string=record)
    ladder.save(ladder.parse(record), tmp_path)  # the chart of this very record
    return nodes


def test_one_sample_per_rung_is_not_enough_for_a_median(tmp_path: Path) -> None:
    """`SAMPLES=1 sh measure.sh`, or the old script: read and drawn, but not the step done."""
    nodes = _measured_and_drawn(tmp_path, OLD_RECORD + "mesh_start_s=5.1\nmesh_mem=1Mi 42Mi\n")
    assert outcome(nodes) == {"rungs_measured"}


def test_a_record_without_the_mesh_is_caught(tmp_path: Path) -> None:
    nodes = solved(tmp_path)
    nodes.first.files[f"{DIR}/ladder.txt"] = FakeFile(exists=True, content_string="".join(line + "\n" for line in RECORD.splitlines() if not line.startswith("mesh_")))
    assert outcome(nodes) == {"rungs_measured", "chart_drawn"}


def test_a_mesh_pod_without_its_sidecar_is_caught(tmp_path: Path) -> None:
    """lab06-mesh without istio-injection=enabled: the "sidecar" pod is the plain pod again."""
    nodes = _measured_and_drawn(tmp_path, RECORD.replace("mesh_mem=1Mi 42Mi", "mesh_mem=1Mi").replace("mesh_mem=1Mi 43Mi", "mesh_mem=2Mi"))
    assert outcome(nodes) == {"rungs_measured"}


def test_a_verdict_written_in_chinese_counts_as_the_guide_in_chinese_asks(tmp_path: Path) -> None:
    nodes = solved(tmp_path)
    chinese = (
        "冷启动用了 4.2 秒，而热请求只要 0.03 秒。对于一天只被调用几次的任务，按需付费、缩容到零更划算；"
        "对于延迟敏感、持续有流量的服务，我宁愿用 min-scale 保留一个实例，或者直接跑成普通的 Deployment。"
        "边车让每个 Pod 多占了约 40 MiB 内存，这也是要算进成本的。"
    )
    nodes.first.files[f"{DIR}/verdict.txt"] = FakeFile(exists=True, content_string=chinese)
    assert "verdict_written" not in outcome(nodes)
    nodes.first.files[f"{DIR}/verdict.txt"] = FakeFile(exists=True, content_string="冷启动很慢，4 秒。")  # too thin in any language
    assert "verdict_written" in outcome(nodes)


def test_the_table_in_chinese_keeps_its_columns_aligned() -> None:
    from rich.cells import cell_len

    text = ladder.table(ladder.parse(RECORD), "zh")
    lines = text.splitlines()
    assert "函数（冷启动）" in text and "服务网格每个 Pod 的开销" in text and "+2.291" in text
    rows = lines[: len(ladder.RUNGS) + 1]
    assert len({cell_len(line) for line in rows}) == 1  # a Chinese character takes two cells
