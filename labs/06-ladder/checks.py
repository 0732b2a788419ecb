"""Lab 06 checks: the measurements on the control plane, the chart on the host, and the
student's verdict."""

import json

from labkit.errors import KitError
from labkit.labs import ladder
from labkit.labs.discovery import check, why

DIR = "/home/vagrant/lab06"
# A median needs several samples: measure.sh takes 3 of each rung unless SAMPLES says more.
MIN_SAMPLES = 3
# Istio's sidecar (Envoy and its agent) holds tens of MiB; a difference under this between
# the pod with it and the pod without means the second pod had no sidecar.
SIDECAR_MIN_MIB = 10


def _measured(record):
    try:
        return {r.key: r for r in ladder.parse(record)}
    except KitError as exc:
        raise AssertionError(exc.args[0]) from None  # a why(): said in the guide's language


@check("rungs_measured", hint="On the control plane, `cd ~/lab06 && sh measure.sh > ladder.txt` (step 1; lab 05's hello must exist).")
def rungs_measured(nodes):
    record = nodes.text(f"{DIR}/ladder.txt")
    assert record is not None, "~/lab06/ladder.txt does not exist yet"
    rungs = _measured(record)
    for r in rungs.values():
        assert min(r.starts) > 0 and min(r.memories) > 0, why(
            "{rung}: a start-up of {start} s and {memory} MiB cannot be right", rung=r.label, start=min(r.starts), memory=min(r.memories)
        )
        if r.key != "vm":  # the VM booted once
            assert r.samples >= MIN_SAMPLES, why(
                "{rung}: {samples} sample(s) of its start-up; a median needs at least {least} (SAMPLES={least}, measure.sh's default)",
                rung=r.label,
                samples=r.samples,
                least=MIN_SAMPLES,
            )
    assert rungs["container"].start_s < rungs["vm"].start_s, "a container should start faster than the VM boots: measure again"
    sidecar = rungs["mesh"].memory_mib - rungs["pod"].memory_mib
    assert sidecar >= SIDECAR_MIN_MIB, why(
        "the pod in lab06-mesh holds {sidecar:+.1f} MiB over the same pod without the mesh: it had no istio-proxy sidecar"
        " (is lab06-mesh labelled istio-injection=enabled? `kubectl -n lab06-mesh get pods` shows 2/2)",
        sidecar=sidecar,
    )


@check("chart_drawn", hint="On the host: `./kit lab.ladder` (step 2) prints the table and writes .state/ladder.png.")
def chart_drawn(nodes):
    data = nodes.state_dir / "ladder.json"
    png = nodes.state_dir / "ladder.png"
    assert data.exists() and png.exists(), "no ladder.json and ladder.png in the state folder: run `./kit lab.ladder`"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", "ladder.png is not a PNG image"
    drawn = {r["key"]: r for r in json.loads(data.read_text())}
    record = nodes.text(f"{DIR}/ladder.txt")
    assert record is not None, "~/lab06/ladder.txt is gone: measure again (step 1)"
    measured = _measured(record)
    assert {k: v["start_s"] for k, v in drawn.items()} == {k: v.start_s for k, v in measured.items()}, "the chart is older than the measurements: run `./kit lab.ladder` again"


@check("verdict_written", hint="Write ~/lab06/verdict.txt (step 3): when would you pay the cold start, and when not? Use your numbers.")
def verdict_written(nodes):
    verdict = nodes.text(f"{DIR}/verdict.txt")
    assert verdict is not None, "~/lab06/verdict.txt does not exist yet"
    text = verdict.lower()
    # Words as the guide's two languages count them: English by spaces, Chinese by
    # characters (two characters make about one word).
    cjk = sum(1 for ch in text if "\u4e00" <= ch <= "\u9fff")
    words = len([w for w in text.split() if not any("\u4e00" <= ch <= "\u9fff" for ch in w)]) + cjk // 2
    assert words >= 40, "the verdict is shorter than 40 words: weigh the numbers against the trade-offs"
    assert "cold start" in text or "冷启动" in text, "the verdict should weigh the cold start you measured"
    assert any(ch.isdigit() for ch in text), "quote at least one of your numbers"
