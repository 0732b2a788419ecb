"""The contract between Python and the roles: every `kit.…` a role, template or playbook
reads is rendered by the kit (labkit.cluster.inventory), for a config with every layer
and add-on on; and the preflight role's version is the one the kit renders."""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml

from labkit.cache import manifest as cache_manifest
from labkit.cluster import inventory
from labkit.cluster.config import load
from labkit.cluster.resolved import HostContext
from labkit.cluster.vagrant import SshEndpoint
from labkit.paths import MANIFEST, PLAYBOOKS, ROLES, ROOT

# kit.a.b and kit.a['b-c'] (artifact and image names may hold dashes).
READ = re.compile(r"\bkit((?:\.[a-z_][a-z0-9_]*|\['[A-Za-z0-9_.-]+'\])+)")
STEP = re.compile(r"\.([a-z_][a-z0-9_]*)|\['([A-Za-z0-9_.-]+)'\]")


def rendered_kit(tmp_path: Path) -> dict[str, Any]:
    shutil.copy(ROOT / "sandbox.yml", tmp_path / "sandbox.yml")
    (tmp_path / "sandbox.local.yml").write_text("addons: {dashboard: true, prometheus: true, kiali: true, grafana: true, jaeger: true, knative_eventing: true}\n")
    resolved = load(tmp_path / "sandbox.yml", HostContext())
    manifest = cache_manifest.load_manifest([MANIFEST])
    addons = [name for name, on in resolved.config.addons.model_dump().items() if on]
    items = cache_manifest.plan(manifest, resolved.config.versions.model_dump(), [*resolved.enabled_layers(), "labs"], "amd64", addons=addons)
    endpoints = {n.name: SshEndpoint("127.0.0.1", 22, "vagrant", "") for n in resolved.nodes}
    images = cache_manifest.image_refs(manifest, resolved.config.versions.model_dump())
    inv = inventory.render(resolved.to_dict(), endpoints, artifacts=cache_manifest.role_vars(items), images=images)
    return inv["all"]["vars"]["kit"]


def reads() -> dict[str, list[str]]:
    """Each dotted `kit` path the Ansible side reads, with the files that read it."""
    found: dict[str, list[str]] = {}
    files = [*ROLES.rglob("*.yml"), *ROLES.rglob("*.j2"), *PLAYBOOKS.glob("*.yml")]
    for path in files:
        for m in READ.finditer(path.read_text()):
            dotted = ".".join(a or b for a, b in STEP.findall(m.group(1)))
            found.setdefault(dotted, []).append(str(path.relative_to(ROOT)))
    return found


def test_the_roles_read_some_kit_variables() -> None:
    paths = reads()
    assert "cache.url" in paths and "artifacts.containerd" in paths and "images.image-pause" in paths  # the scan itself works


@pytest.mark.parametrize("dotted", sorted(reads()))
def test_every_kit_variable_a_role_reads_is_rendered(dotted: str, tmp_path: Path) -> None:
    value: Any = rendered_kit(tmp_path)
    for key in dotted.split("."):
        assert isinstance(value, dict) and key in value, f"kit.{dotted} (read by {', '.join(sorted(set(reads()[dotted])))}) is not rendered by the kit"
        value = value[key]


def test_preflight_reads_the_version_the_kit_renders(tmp_path: Path) -> None:
    defaults = yaml.safe_load((ROLES / "preflight/defaults/main.yml").read_text())
    assert rendered_kit(tmp_path)["schema_version"] == defaults["preflight_kit_schema_version"] == inventory.KIT_VARS_VERSION
