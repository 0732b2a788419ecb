"""The small profile: every layer the labs need in at most 4.5 GiB of guest RAM, valid
under the kit's own rules, merged over sandbox.yml and under the student's override."""

from __future__ import annotations

import shutil
from pathlib import Path

from labkit.cluster.config import PROFILES, load
from labkit.cluster.resolved import HostContext
from labkit.labs.discovery import discover
from labkit.paths import ROOT

HOST = HostContext(system="Linux", providers=("libvirt",))


def small(tmp_path: Path, local: str = "") -> object:
    shutil.copy(ROOT / "sandbox.yml", tmp_path / "sandbox.yml")
    (tmp_path / "sandbox.local.yml").write_text("profile: small\n" + local)
    return load(tmp_path / "sandbox.yml", HOST)


def test_the_small_profile_fits_every_layer_in_4_5_gib(tmp_path: Path) -> None:
    resolved = small(tmp_path)
    assert sum(n.memory for n in resolved.nodes) <= 4608
    assert resolved.enabled_layers() == ["kubernetes", "istio", "knative"]
    assert resolved.config.control_plane_workloads and len(resolved.workers) == 1  # lab 03's drain has somewhere to go
    assert resolved.to_dict()["control_plane_workloads"] is True


def test_the_students_own_override_still_wins(tmp_path: Path) -> None:
    resolved = small(tmp_path, "addons: {knative_eventing: true}\n")
    assert resolved.config.addons.knative_eventing and sum(n.memory for n in resolved.nodes) <= 4608


def test_every_lab_runs_on_it_and_the_steps_that_need_an_add_on_are_named(tmp_path: Path) -> None:
    resolved = small(tmp_path)
    addons = [a for a, on in resolved.config.addons.model_dump().items() if on]
    for lab in discover():
        assert lab.missing_layers(resolved.enabled_layers()) == []
    lacking = {lab.id: lab.steps_lacking(addons) for lab in discover()}
    assert lacking["05"] == ["step 7 (addons.knative_eventing)"] and all(v == [] for k, v in lacking.items() if k != "05")


def test_the_default_keeps_the_control_planes_taint(tmp_path: Path) -> None:
    shutil.copy(ROOT / "sandbox.yml", tmp_path / "sandbox.yml")
    assert not load(tmp_path / "sandbox.yml", HOST).config.control_plane_workloads
    assert set(PROFILES) == {"small"}
