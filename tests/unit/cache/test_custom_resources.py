"""Every custom resource kept in the repository matches its CRD's own OpenAPI schema.

The CRDs are upstream release files in the artifact cache (Istio's base chart, Knative's
serving and eventing CRD manifests), read by labkit.cache.crds (tested in test_crds.py). Where
the cache does not hold them yet (a machine without upstream access, before anyone
fetched them), the check is skipped with the reason; after `./kit cache.fetch`
it runs here, and the e2e suite runs it as well as a server-side dry run.
"""

from __future__ import annotations

from typing import Any

import pytest

from labkit.cache import supply
from labkit.cluster.kit import Kit
from labkit.errors import KitError
from tests.unit.k8s_schemas import repo_custom_resources

RESOURCES = repo_custom_resources()


@pytest.fixture(scope="module")
def schemas() -> Any:
    try:
        return supply.custom_resource_schemas(Kit(say=lambda _: None))
    except KitError as exc:
        pytest.skip(f"Istio's and Knative's CRDs are not in the cache: {exc}")


@pytest.mark.parametrize(("where", "doc"), RESOURCES, ids=[w for w, _ in RESOURCES])
def test_custom_resource_matches_its_crd(schemas: Any, where: str, doc: dict[str, Any]) -> None:
    assert schemas.errors(doc) == [], where


def test_the_rendered_telemetry_resource_matches_its_crd(schemas: Any, rendered: dict[str, Any]) -> None:
    import yaml

    assert schemas.errors(yaml.safe_load(rendered["files"]["cp1-tracing-telemetry.yaml"])) == []
