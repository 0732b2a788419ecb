"""Every Kubernetes manifest kept in this repository is valid for Kubernetes 1.36.

Manifests the labs and the e2e suite apply (`*.yaml` under labs/ and tests/e2e/k8s/),
and any literal `definition:` of a kubernetes.core.k8s task in the roles, validated
offline against the 1.36 schemas (strict: unknown fields are errors).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.unit.k8s_schemas import k8s_errors

ROOT = Path(__file__).resolve().parents[2]
# Custom resources (Istio, Knative): the Kubernetes schemas do not cover them; the API
# groups and versions are checked below, their fields by the API server in the e2e suite.
CUSTOM_GROUPS = {"networking.istio.io": "v1", "security.istio.io": "v1", "serving.knative.dev": "v1", "sources.knative.dev": "v1"}


def manifest_docs() -> list[tuple[str, dict[str, Any]]]:
    out = []
    for path in sorted([*ROOT.glob("labs/*/manifests/*.yaml"), *ROOT.glob("tests/e2e/*/*.yaml")]):
        docs = [(f"{path.relative_to(ROOT)}#{i}", d) for i, d in enumerate(yaml.safe_load_all(path.read_text())) if d]
        out += [(where, d) for where, d in docs if d["apiVersion"].split("/")[0] not in CUSTOM_GROUPS]
    for path in sorted(ROOT.glob("roles/*/tasks/*.yml")):
        for i, task in enumerate(yaml.safe_load(path.read_text()) or []):
            for t in [task, *task.get("block", []), *task.get("rescue", []), *task.get("always", [])]:
                definition = (t.get("kubernetes.core.k8s") or {}).get("definition")
                if isinstance(definition, dict):
                    out.append((f"{path.relative_to(ROOT)}#{i}", definition))
    return out


def test_there_are_manifests_to_check() -> None:
    assert len(manifest_docs()) >= 5


@pytest.mark.parametrize(("where", "doc"), manifest_docs(), ids=[w for w, _ in manifest_docs()])
def test_manifest_is_valid_for_kubernetes_1_36(where: str, doc: dict[str, Any]) -> None:
    assert k8s_errors(doc) == [], where


def test_custom_resources_use_the_stable_api_versions() -> None:
    found = 0
    for path in sorted([*ROOT.glob("labs/*/manifests/*.yaml"), *ROOT.glob("tests/e2e/*/*.yaml")]):
        for doc in yaml.safe_load_all(path.read_text()):
            group, _, version = (doc or {}).get("apiVersion", "").partition("/")
            if group in CUSTOM_GROUPS:
                found += 1
                assert version == CUSTOM_GROUPS[group], f"{path}: {doc['kind']} uses {group}/{version}, not the stable {CUSTOM_GROUPS[group]}"
    assert found >= 5
