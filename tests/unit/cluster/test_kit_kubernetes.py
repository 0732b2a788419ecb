"""The Kubernetes commands of the kit: `provision --reset` and `kubeconfig`.

Playbook runs are replaced by a recording test double (named so below); the VMs by a
fixed state. What is tested is the kit's own logic: order, arguments, refusals, modes.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from labkit.cluster import lifecycle, runner
from labkit.cluster.kit import Kit
from labkit.errors import KitError
from labkit.labs import actions, discovery

ROOT = Path(__file__).resolve().parents[3]


class RecordingPlaybooks:
    """Test double of runner.playbook: records each call, writes what kubeconfig.yml would."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def __call__(self, root: Path, name: str, inventory: Path, **kw: Any) -> runner.PlaybookRun:
        self.calls.append((name, kw))
        for arg in kw.get("extra", ()):
            if arg.startswith("kubeconfig_dest="):
                Path(arg.split("=", 1)[1]).write_text("apiVersion: v1\nkind: Config\n")
        return runner.PlaybookRun(recap={"cp1": runner.HostRecap(ok=3)}, lines=[])


@pytest.fixture
def kit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Kit, RecordingPlaybooks]:
    shutil.copy(ROOT / "sandbox.yml", tmp_path / "sandbox.yml")
    k = Kit(config_path=tmp_path / "sandbox.yml", state_dir=tmp_path / "state", say=lambda _: None)
    playbooks = RecordingPlaybooks()
    monkeypatch.setattr(lifecycle.runner, "playbook", playbooks)
    monkeypatch.setattr(lifecycle.supply, "verify", lambda k, **kw: [])
    monkeypatch.setattr(lifecycle.supply, "ensure_samples", lambda k: None)
    monkeypatch.setattr(lifecycle, "running_inventory", lambda k, resolved: tmp_path / "inventory.yml")
    monkeypatch.setattr(lifecycle, "run_site", lambda k, resolved, inv, **kw: playbooks(ROOT, "site.yml", inv, **kw))
    return k, playbooks


def test_provision_reset_takes_the_layer_down_before_provisioning(kit: tuple[Kit, RecordingPlaybooks]) -> None:
    k, playbooks = kit
    lifecycle.provision(k, reset=True)
    assert [name for name, _ in playbooks.calls] == ["reset.yml", "site.yml"]


def test_provision_without_reset_only_provisions(kit: tuple[Kit, RecordingPlaybooks]) -> None:
    k, playbooks = kit
    lifecycle.provision(k)
    assert [name for name, _ in playbooks.calls] == ["site.yml"]


def test_kubeconfig_is_written_to_the_state_folder_with_mode_0600(kit: tuple[Kit, RecordingPlaybooks]) -> None:
    k, playbooks = kit
    path = lifecycle.kubeconfig(k)
    assert path == k.state_dir / "kubeconfig"
    assert path.stat().st_mode & 0o777 == 0o600
    assert playbooks.calls[0][0] == "kubeconfig.yml"


def test_kubeconfig_refuses_when_the_layer_is_off(kit: tuple[Kit, RecordingPlaybooks], tmp_path: Path) -> None:
    k, playbooks = kit
    config = tmp_path / "sandbox.yml"
    config.write_text(config.read_text().replace("  kubernetes: true\n  istio: true\n  knative: true", "  kubernetes: false\n  istio: false\n  knative: false"))
    with pytest.raises(KitError, match="kubernetes layer is off"):
        lifecycle.kubeconfig(k)
    assert playbooks.calls == []


def test_the_reset_playbook_never_ignores_preflight_errors() -> None:
    for path in ROOT.glob("playbooks/*.yml"):
        assert "ignore-preflight-errors" not in path.read_text(), path
    for path in ROOT.glob("roles/*/tasks/*.yml"):
        assert "ignore-preflight-errors" not in path.read_text(), path


def test_a_lab_above_the_enabled_layers_is_refused_before_anything_runs(kit: tuple[Kit, RecordingPlaybooks], tmp_path: Path) -> None:

    k, playbooks = kit
    config = tmp_path / "sandbox.yml"
    config.write_text(config.read_text().replace("  kubernetes: true\n  istio: true\n  knative: true", "  kubernetes: true\n  istio: false\n  knative: false"))
    five = discovery.find(discovery.discover(), "05")
    with pytest.raises(KitError, match=r"lab 05 needs the knative, istio layer\(s\): set layers.knative: true, layers.istio: true"):
        actions.start(k, five)
    actions.require_layers(k, discovery.find(discovery.discover(), "03"))  # kubernetes is on: no refusal
    assert playbooks.calls == []
