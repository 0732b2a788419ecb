"""Every Kubernetes manifest kept in this repository is valid for Kubernetes 1.36.

Manifests the labs and the e2e suite apply (`*.yaml` under labs/ and tests/e2e/),
and any literal `definition:` of a kubernetes.core.k8s task in the roles, validated
offline against the 1.36 schemas (strict: unknown fields are errors). Custom resources
(Istio, Knative) are checked against their CRDs in test_custom_resources.py.
"""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from tests.unit.k8s_schemas import CUSTOM_GROUPS, ROOT, k8s_errors, repo_custom_resources, repo_manifests


def manifest_docs() -> list[tuple[str, dict[str, Any]]]:
    out = [(where, d) for where, d in repo_manifests() if d["apiVersion"].partition("/")[0] not in CUSTOM_GROUPS]
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
    found = repo_custom_resources()
    for where, doc in found:
        group, _, version = doc["apiVersion"].partition("/")
        assert version == CUSTOM_GROUPS[group], f"{where}: {doc['kind']} uses {group}/{version}, not the stable {CUSTOM_GROUPS[group]}"
    assert len(found) >= 5
