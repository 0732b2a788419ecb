"""Lab 06: the ladder measured — start-up time and memory of a VM, a container, a pod and
a function, from what ``labs/06-ladder/measure.sh`` records on the control plane.

``parse`` turns that record (``key=value`` lines) into rows, ``table`` prints them and
``chart`` draws them as a PNG (matplotlib) beside the seed's trade-off.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass
from pathlib import Path

from labkit import budget
from labkit.errors import KitError

RUNGS = (("vm", "VM (boot)"), ("container", "container (ctr)"), ("pod", "pod (Kubernetes)"), ("function", "function (cold start)"))
_UNITS = {"ms": 0.001, "s": 1.0, "min": 60.0, "h": 3600.0}


@dataclass(frozen=True)
class Rung:
    key: str
    label: str
    start_s: float
    memory_mib: float


def systemd_seconds(text: str) -> float:
    """The total of `systemd-analyze` ("... = 1min 2.345s") in seconds."""
    total = text.rsplit("=", 1)[-1].strip()
    parts = re.findall(r"([0-9.]+)(ms|min|s|h)\b", total)
    if not parts:
        raise KitError(f"cannot read a duration from {text!r}")
    return sum(float(v) * _UNITS[u] for v, u in parts)


def mebibytes(text: str) -> float:
    """`123Mi`, `2Gi`, `512Ki` or plain bytes, in MiB; several values (one per container) are summed."""
    values = re.findall(r"[0-9.]+(?:Ki|Mi|Gi)?", text)
    if not values:
        raise KitError(f"cannot read a memory size from {text!r}")
    return sum(budget.mib(v) for v in values)


def parse(record: str) -> list[Rung]:
    """The four rungs from measure.sh's record; says which measurement is missing."""
    values = dict(line.split("=", 1) for line in record.splitlines() if "=" in line and not line.startswith("#"))
    wanted = ["vm_boot", "vm_mem", "container_start_s", "container_mem", "pod_start_s", "pod_mem", "function_start_s", "function_mem"]
    missing = [k for k in wanted if not values.get(k, "").strip()]
    if missing:
        raise KitError(f"the record lacks {', '.join(missing)}: run measure.sh again (step 1)")
    starts = {
        "vm": systemd_seconds(values["vm_boot"]),
        "container": float(values["container_start_s"]),
        "pod": float(values["pod_start_s"]),
        "function": float(values["function_start_s"]),
    }
    memory = {key: mebibytes(values[f"{key}_mem"]) for key, _ in RUNGS}
    return [Rung(key, label, round(starts[key], 3), round(memory[key], 1)) for key, label in RUNGS]


def table(rungs: list[Rung]) -> str:
    lines = [f"{'rung':<24}{'start-up':>12}{'memory':>12}"]
    lines += [f"{r.label:<24}{r.start_s:>11.3f}s{r.memory_mib:>9.1f} MiB" for r in rungs]
    return "\n".join(lines)


def chart(rungs: list[Rung], png: Path) -> Path:
    """Two bar charts (start-up on a log scale, memory) in one PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = [r.label.replace(" (", "\n(") for r in rungs]
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.5))
    left.bar(labels, [r.start_s for r in rungs], color=["#4c72b0", "#55a868", "#c44e52", "#8172b2"])
    left.set_yscale("log")
    left.set_ylabel("seconds (log scale)")
    left.set_title("Start-up time")
    right.bar(labels, [r.memory_mib for r in rungs], color=["#4c72b0", "#55a868", "#c44e52", "#8172b2"])
    right.set_ylabel("MiB")
    right.set_title("Memory in use")
    fig.suptitle("The ladder on your cluster: each rung starts faster and smaller; a function pays its cold start")
    fig.tight_layout()
    png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(png, dpi=100, metadata={"Software": "labkit"})
    plt.close(fig)
    return png


def save(rungs: list[Rung], state_dir: Path) -> tuple[Path, Path]:
    data = state_dir / "ladder.json"
    data.parent.mkdir(parents=True, exist_ok=True)
    data.write_text(json.dumps([asdict(r) for r in rungs], indent=2) + "\n")
    return data, chart(rungs, state_dir / "ladder.png")
