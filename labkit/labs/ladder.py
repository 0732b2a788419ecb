"""Lab 06: the ladder measured — start-up time and memory of a VM, a container, a pod, the
same pod with the mesh's sidecar, and a function, from what ``labs/06-ladder/measure.sh``
records on the control plane.

The record is ``key=value`` lines, one line per sample: measure.sh takes several samples of
each rung (``SAMPLES``, 3 unless set), so each key repeats; a record of one line per key
(measure.sh before it took samples) reads the same way. ``parse`` turns the record into
rungs whose figures are the medians of their samples, ``table`` prints them with the
mesh's cost (what Istio's sidecar adds to the same pod's start-up and memory), and
``chart`` draws them as a PNG (matplotlib): the medians as bars, the samples' spread as
whiskers.
"""

from __future__ import annotations

import json
import re
import statistics
from dataclasses import asdict, dataclass
from pathlib import Path

from labkit.cluster import budget
from labkit.errors import KitError
from labkit.labs.discovery import why

RUNGS = (
    ("vm", "VM (boot)"),
    ("container", "container (ctr)"),
    ("pod", "pod (Kubernetes)"),
    ("mesh", "pod + sidecar (Istio)"),
    ("function", "function (cold start)"),
)
# The record's key of each rung's start-up; its memory is `<rung>_mem`.
START_KEYS = {"vm": "vm_boot", "container": "container_start_s", "pod": "pod_start_s", "mesh": "mesh_start_s", "function": "function_start_s"}
COLOURS = {"vm": "#4c72b0", "container": "#55a868", "pod": "#c44e52", "mesh": "#dd8452", "function": "#8172b2"}
_UNITS = {"ms": 0.001, "s": 1.0, "min": 60.0, "h": 3600.0}


@dataclass(frozen=True)
class Rung:
    key: str
    label: str
    start_s: float  # the median of the samples
    memory_mib: float  # the median of the samples
    starts: tuple[float, ...] = ()  # every sample, in the record's order
    memories: tuple[float, ...] = ()

    @property
    def samples(self) -> int:
        """How many start-ups were timed (the VM booted once: one)."""
        return len(self.starts)


def systemd_seconds(text: str) -> float:
    """The total of `systemd-analyze` ("... = 1min 2.345s") in seconds."""
    total = text.rsplit("=", 1)[-1].strip()
    parts = re.findall(r"([0-9.]+)(ms|min|s|h)\b", total)
    if not parts:
        raise KitError(why("cannot read a duration from {text!r}", text=text))
    return sum(float(v) * _UNITS[u] for v, u in parts)


def mebibytes(text: str) -> float:
    """`123Mi`, `2Gi`, `512Ki` or plain bytes, in MiB; several values (one per container) are summed."""
    values = re.findall(r"[0-9.]+(?:Ki|Mi|Gi)?", text)
    if not values:
        raise KitError(why("cannot read a memory size from {text!r}", text=text))
    return sum(budget.mib(v) for v in values)


def seconds(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise KitError(why("cannot read a number of seconds from {text!r}", text=text)) from None


def samples(record: str) -> dict[str, list[str]]:
    """Each key's values, in the record's order (blank values and `#` comments left out)."""
    found: dict[str, list[str]] = {}
    for line in record.splitlines():
        if "=" in line and not line.startswith("#"):
            key, value = line.split("=", 1)
            if value.strip():
                found.setdefault(key.strip(), []).append(value.strip())
    return found


def parse(record: str) -> list[Rung]:
    """The rungs from measure.sh's record, each the median of its samples; says which
    measurement is missing."""
    values = samples(record)
    wanted = [k for key, _ in RUNGS for k in (START_KEYS[key], f"{key}_mem")]
    missing = [k for k in wanted if k not in values]
    if missing:
        raise KitError(why("the record lacks {missing}: run measure.sh again (step 1)", missing=", ".join(missing)))
    rungs = []
    for key, label in RUNGS:
        read = systemd_seconds if key == "vm" else seconds
        starts = tuple(round(read(v), 3) for v in values[START_KEYS[key]])
        memories = tuple(round(mebibytes(v), 1) for v in values[f"{key}_mem"])
        rungs.append(Rung(key, label, round(statistics.median(starts), 3), round(statistics.median(memories), 1), starts, memories))
    return rungs


def mesh_cost(rungs: list[Rung]) -> tuple[float, float]:
    """What the sidecar adds to the same pod: start-up seconds and MiB (medians)."""
    by_key = {r.key: r for r in rungs}
    return round(by_key["mesh"].start_s - by_key["pod"].start_s, 3), round(by_key["mesh"].memory_mib - by_key["pod"].memory_mib, 1)


def table(rungs: list[Rung], language: str = "en") -> str:
    from labkit.labs.words import RUNGS_ZH, WORDS, pad, say_in

    rung, start_up, memory_h, samples_h = WORDS[language]["ladder_columns"].split("|")
    label = {r.key: (r.label if language == "en" else RUNGS_ZH.get(r.key, r.label)) for r in rungs}
    lines = [pad(rung, 24) + pad(start_up, 12, True) + pad(memory_h, 14, True) + pad(samples_h, 9, True)]
    lines += [pad(label[r.key], 24) + f"{r.start_s:>11.3f}s{r.memory_mib:>10.1f} MiB{r.samples:>9}" for r in rungs]
    start, memory = mesh_cost(rungs)
    lines += [say_in(language, "ladder_medians"), say_in(language, "ladder_mesh", start=start, memory=memory)]
    return "\n".join(lines)


def _whiskers(medians: list[float], spreads: list[tuple[float, ...]]) -> list[list[float]]:
    return [[m - min(s) for m, s in zip(medians, spreads, strict=True)], [max(s) - m for m, s in zip(medians, spreads, strict=True)]]


def chart(rungs: list[Rung], png: Path) -> Path:
    """Two bar charts (start-up on a log scale, memory) in one PNG: medians, with whiskers
    from the smallest sample to the largest."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = [r.label.replace(" (", "\n(") for r in rungs]
    colours = [COLOURS[r.key] for r in rungs]
    fig, (left, right) = plt.subplots(1, 2, figsize=(13, 5))
    starts = [r.start_s for r in rungs]
    left.bar(labels, starts, color=colours, yerr=_whiskers(starts, [r.starts for r in rungs]), capsize=4)
    left.set_yscale("log")
    left.set_ylabel("seconds (log scale)")
    left.set_title("Start-up time")
    memory = [r.memory_mib for r in rungs]
    right.bar(labels, memory, color=colours, yerr=_whiskers(memory, [r.memories for r in rungs]), capsize=4)
    right.set_ylabel("MiB")
    right.set_title("Memory in use")
    for axes in (left, right):
        axes.tick_params(axis="x", labelsize=8)
    start, mib = mesh_cost(rungs)
    fig.suptitle("The ladder on your cluster: each rung starts faster and smaller; a function pays its cold start")
    fig.text(
        0.5, 0.01, f"Medians, whiskers from the smallest sample to the largest. The mesh's cost per pod (Istio's sidecar): {start:+.2f} s to start, {mib:+.1f} MiB.", ha="center"
    )
    fig.tight_layout(rect=(0, 0.04, 1, 1))
    png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(png, dpi=100, metadata={"Software": "labkit"})
    plt.close(fig)
    return png


def save(rungs: list[Rung], state_dir: Path) -> tuple[Path, Path]:
    data = state_dir / "ladder.json"
    data.parent.mkdir(parents=True, exist_ok=True)
    data.write_text(json.dumps([asdict(r) for r in rungs], indent=2) + "\n")
    return data, chart(rungs, state_dir / "ladder.png")
