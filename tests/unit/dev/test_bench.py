"""The benchmarks: the provisioning report on figures recorded from a CI run (QEMU
emulation), and the cache server's benchmark against its peer on a tiny blob."""

from __future__ import annotations

import shutil

import pytest

from labkit.dev.bench import TUNED, report, report_fresh

FIRST = {
    "phases": [{"name": "boot the VMs (libvirt)", "seconds": 127.9}, {"name": "provision (playbooks/site.yml)", "seconds": 323.3}],
    "roles": {"containerd": 153.7, "gather_facts": 9.1, "node_base": 151.9, "node_network": 7.5},
}
UNTUNED = {"seconds": 42.6, "changed": 0, "roles": {"containerd": 0.0, "gather_facts": 18.2, "node_base": 0.1, "node_network": 24.3}}
TUNED_RUN = {"seconds": 185.3, "changed": 0, "roles": {"containerd": 93.5, "node_base": 81.8, "node_network": 8.5}}


def test_full_report_compares_each_rerun_with_the_first() -> None:
    lines = report(FIRST, {"re-run, tuning off": {**UNTUNED, "seconds": 600.0}, "re-run, Mitogen off": {**UNTUNED, "seconds": 250.0}, TUNED: TUNED_RUN}, None)
    assert "first provisioning                  323.3 s" in lines[1]
    assert "re-run, tuning off" in lines[2] and "186% of the first,  3.2x the tuned re-run" in lines[2]
    assert "re-run, Mitogen off" in lines[3] and "77% of the first,  1.3x the tuned re-run" in lines[3]
    assert "57% of the first   (changed" in lines[4]
    assert lines[5].split()[-5:] == ["all", "off", "no", "Mitogen", "tuned"]
    assert not any("slowest tasks" in line for line in lines)  # none recorded


def test_the_report_names_the_slowest_tasks_of_the_tuned_rerun() -> None:
    tasks = [("node_network : Private network | Reach every peer", 8.93), ("Gathering Facts", 2.1)]
    lines = report(FIRST, {TUNED: {**TUNED_RUN, "tasks": tasks}}, None)
    at = lines.index("  slowest tasks of the tuned re-run (s, profile_tasks):")
    assert lines[at + 1 :] == ["      8.93  node_network : Private network | Reach every peer", "      2.10  Gathering Facts"]


def test_tagged_report_compares_only_the_tagged_roles() -> None:
    lines = report(FIRST, {"re-run, tuning off": UNTUNED, "re-run, Mitogen off": {**UNTUNED, "seconds": 370.6}, TUNED: TUNED_RUN}, "node_network")
    whole = next(line for line in lines if "Mitogen off" in line)  # always a whole re-run, beside the tuned one
    assert "370.6 s  =  115% of the first,  2.0x the tuned re-run" in whole
    untuned = next(line for line in lines if "tuning off" in line)
    assert "24.3 s  vs 8.5 s tuned: 2.9x the tuned time" in untuned
    row = next(line for line in lines if line.strip().startswith("node_network"))
    assert row.split()[1:] == ["7.5", "24.3", "24.3", "8.5"]
    assert next(line for line in lines if line.strip().startswith("gather_facts")).split()[-1] == "-"


def test_new_clusters_compare_the_tuned_first_provisioning_with_the_baseline() -> None:
    off = {"phases": FIRST["phases"], "roles": FIRST["roles"], "changed": 54}
    phases = [{"name": "boot the VMs (libvirt)", "seconds": 116.8}, {"name": "provision (playbooks/site.yml)", "seconds": 125.4}]
    tuned = {"phases": phases, "roles": {"node_base": 64.3}, "changed": 54}
    lines = report_fresh(off, tuned)
    assert "323.3 s   (boot 127.9 s, changed tasks: 54)" in lines[1]
    assert "125.4 s  =   39% of the baseline   (boot 116.8 s" in lines[2]
    assert next(line for line in lines if line.strip().startswith("node_base")).split()[1:] == ["151.9", "64.3"]
    assert next(line for line in lines if line.strip().startswith("containerd")).split()[-1] == "-"


@pytest.mark.skipif(shutil.which("docker-registry") is None or shutil.which("curl") is None, reason="needs the peer, Debian's docker-registry (scripts/host-packages.txt)")
def test_the_cache_benchmark_pulls_the_same_blob_from_both_servers() -> None:
    from labkit.dev import servebench

    results = servebench.run(mib=2, clients=3, say=lambda _: None)
    assert [r.ok for r in results] == [3, 3]  # every pull complete, from the peer and from ours
    lines = servebench.report(results, 2, 3)
    assert "ours / peer: throughput" in lines[-1] and all(r.peak_rss_mib > 0 for r in results)
