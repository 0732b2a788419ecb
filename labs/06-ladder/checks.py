"""Lab 06 checks: the measurements on the control plane, the chart on the host, and the
student's verdict."""

import json

from labkit import ladder
from labkit.labs import check

DIR = "/home/vagrant/lab06"


@check("rungs_measured", hint="On the control plane, `cd ~/lab06 && sh measure.sh > ladder.txt` (step 1; lab 05's hello must exist).")
def rungs_measured(nodes):
    record = nodes.first.file(f"{DIR}/ladder.txt")
    assert record.exists, "~/lab06/ladder.txt does not exist yet"
    rungs = {r.key: r for r in ladder.parse(record.content_string)}
    for r in rungs.values():
        assert r.start_s > 0 and r.memory_mib > 0, f"{r.label}: a start-up of {r.start_s} s and {r.memory_mib} MiB cannot be right"
    assert rungs["container"].start_s < rungs["vm"].start_s, "a container should start faster than the VM boots: measure again"


@check("chart_drawn", hint="On the host: `./kit lab.ladder` (step 2) prints the table and writes .state/ladder.png.")
def chart_drawn(nodes):
    data = nodes.state_dir / "ladder.json"
    png = nodes.state_dir / "ladder.png"
    assert data.exists() and png.exists(), "no ladder.json and ladder.png in the state folder: run `./kit lab.ladder`"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", "ladder.png is not a PNG image"
    drawn = {r["key"]: r for r in json.loads(data.read_text())}
    record = nodes.first.file(f"{DIR}/ladder.txt")
    assert record.exists, "~/lab06/ladder.txt is gone: measure again (step 1)"
    measured = {r.key: r for r in ladder.parse(record.content_string)}
    assert {k: v["start_s"] for k, v in drawn.items()} == {k: v.start_s for k, v in measured.items()}, "the chart is older than the measurements: run `./kit lab.ladder` again"


@check("verdict_written", hint="Write ~/lab06/verdict.txt (step 3): when would you pay the cold start, and when not? Use your numbers.")
def verdict_written(nodes):
    verdict = nodes.first.file(f"{DIR}/verdict.txt")
    assert verdict.exists, "~/lab06/verdict.txt does not exist yet"
    text = verdict.content_string.lower()
    assert len(text.split()) >= 40, "the verdict is shorter than 40 words: weigh the numbers against the trade-offs"
    assert "cold start" in text, "the verdict should weigh the cold start you measured"
    assert any(ch.isdigit() for ch in text), "quote at least one of your numbers"
