"""The offline custom resource checker (labkit.cache.crds) against CRD test doubles.

tests/unit/data/crds/test-doubles.yaml holds CRDs written for these tests in the shapes
Istio's and Knative's CRDs use; each case below is one thing the API server accepts or
refuses under strict field validation.
"""

from __future__ import annotations

import copy
import io
import tarfile
from pathlib import Path
from typing import Any

import pytest
import yaml

from labkit.cache import crds
from labkit.cache import manifest as cache_manifest
from labkit.cache.oci import sha256_file

DOUBLES = Path(__file__).parents[1] / "data/crds/test-doubles.yaml"
VALID: dict[str, Any] = {
    "apiVersion": "double.labkit.test/v1",
    "kind": "Route",
    "metadata": {"name": "web", "namespace": "lab", "labels": {"app": "web"}},
    "spec": {
        "hosts": ["web"],
        "mode": "STRICT",
        "http": [
            {"route": [{"weight": 90, "port": 80}, {"weight": 10, "port": "http"}], "timeout": None},
            {"abort": {"httpStatus": 503}},
            {"delay": {"fixedDelay": "2s"}},
        ],
        "labels": {"tier": "front"},
        "extra": {"anything": {"goes": [1, "two"]}},
        "template": {"apiVersion": "v1", "kind": "Thing", "metadata": {"name": "t"}, "spec": {"replicas": 1}},
    },
}


@pytest.fixture(scope="module")
def schemas() -> crds.Schemas:
    return crds.Schemas.of(crds.crds_in(DOUBLES))


def changed(path: str, value: Any) -> dict[str, Any]:
    """VALID with the dotted ``path`` set to ``value`` (list indexes as numbers)."""
    doc = copy.deepcopy(VALID)
    *parents, last = [int(p) if p.isdigit() else p for p in path.split(".")]
    node: Any = doc
    for p in parents:
        node = node[p]
    node[last] = value
    return doc


def test_a_valid_resource_has_no_errors(schemas: crds.Schemas) -> None:
    assert schemas.errors(VALID) == []


@pytest.mark.parametrize(
    ("path", "value", "expected"),
    [
        ("spec.hostz", ["web"], "spec: Additional properties are not allowed ('hostz'"),
        ("spec.http.0.route.0.wieght", 90, "spec.http.0.route.0: Additional properties are not allowed ('wieght'"),
        ("spec.http.0.route.0.weight", "90", "spec.http.0.route.0.weight: '90' is not of type 'integer'"),
        ("spec.http.0.route.0.port", True, "spec.http.0.route.0.port: True is not of type 'integer', 'string'"),
        ("spec.http.0.route.0.weight", -1, "spec.http.0.route.0: {"),
        ("spec.mode", "ON", "spec.mode: 'ON' is not one of ['STRICT', 'PERMISSIVE']"),
        ("spec.http.1.abort.httpStatus", 700, "spec.http.1.abort.httpStatus: 700 is greater than the maximum of 599"),
        ("spec.http.2.delay.fixedDelay", "2 seconds", "does not match"),
        ("spec.http.1.delay", {"fixedDelay": "1s"}, "spec.http.1: {"),
        ("spec.labels.tier", 3, "spec.labels.tier: 3 is not of type 'string'"),
        ("spec.http.0.route", None, "spec.http.0.route: None is not of type 'array'"),
        ("spec.template.spec.replicaz", 1, "spec.template.spec: Additional properties are not allowed ('replicaz'"),
        ("metadata.lables", {"app": "web"}, "metadata: 'lables' is not one of"),
        ("metadata.annotations", {"n": 1}, "metadata.annotations.n: 1 is not of type 'string'"),
    ],
    ids=[
        "unknown-field",
        "unknown-nested-in-list",
        "wrong-type",
        "int-or-string",
        "anyof-value-check",
        "enum",
        "maximum",
        "pattern",
        "oneof-both",
        "string-map",
        "not-nullable",
        "embedded-resource",
        "metadata-field",
        "annotations",
    ],
)
def test_each_mistake_is_refused(schemas: crds.Schemas, path: str, value: Any, expected: str) -> None:
    problems = schemas.errors(changed(path, value))
    assert any(expected in p for p in problems), problems


def test_a_required_field_is_required(schemas: crds.Schemas) -> None:
    doc = copy.deepcopy(VALID)
    del doc["spec"]["hosts"]
    assert schemas.errors(doc) == ["Route spec: 'hosts' is a required property"]


@pytest.mark.parametrize(
    ("path", "value"),
    [("spec.http.0.timeout", "5s"), ("spec.extra", {"free": {"form": True}}), ("spec.http.0.route.0.port", 8080), ("status", {"ready": True})],
    ids=["nullable-set", "preserve-unknown-fields", "int-or-string-int", "status"],
)
def test_what_the_schema_allows_is_accepted(schemas: crds.Schemas, path: str, value: Any) -> None:
    assert schemas.errors(changed(path, value)) == []


@pytest.mark.parametrize(
    ("api_version", "kind", "expected"),
    [
        ("double.labkit.test/v1beta1", "Route", "Route: version v1beta1 is deprecated"),
        ("double.labkit.test/v1alpha1", "Route", "Route: version v1alpha1 is not served"),
        ("double.labkit.test/v2", "Route", "Route: version v2 is not defined (the CRD has v1, v1beta1, v1alpha1)"),
        ("double.labkit.test/v1", "Router", "double.labkit.test/v1 Router: no CRD defines this kind"),
    ],
)
def test_the_kind_and_version_must_be_served(schemas: crds.Schemas, api_version: str, kind: str, expected: str) -> None:
    doc = {**VALID, "apiVersion": api_version, "kind": kind}
    assert schemas.errors(doc)[:1] == [expected]


def test_a_cel_rule_that_yields_false_is_refused_with_its_message(schemas: crds.Schemas) -> None:
    assert schemas.errors(changed("spec.template.spec.replicas", -1)) == ["Route spec.template: replicas must not be negative"]
    assert schemas.errors(changed("spec.hosts", ["web", "*.lab"])) == ["Route spec.hosts.1: wildcard hosts are not allowed"]


def test_cel_rules_that_cannot_run_offline_are_recorded_not_guessed() -> None:
    schemas = crds.Schemas.of(crds.crds_in(DOUBLES))
    assert schemas.versions[("double.labkit.test", "v1", "Route")].cel_rules == 4
    assert schemas.errors(changed("spec.hosts", ["10.0.0.1"])) == []  # isIP: the API server's to refuse
    assert schemas.unevaluated == {("Route", "spec.hosts", "self == oldSelf"), ("Route", "spec.hosts.0", "!isIP(self)")}


def test_crds_are_read_from_a_chart_archive_but_not_its_templates(tmp_path: Path) -> None:
    chart = tmp_path / "base-1.0.0.tgz"
    with tarfile.open(chart, "w:gz") as tar:
        for name, text in [
            ("base/files/crd-all.gen.yaml", DOUBLES.read_text()),
            ("base/templates/crds.yaml", '{{ .Files.Get "files/crd-all.gen.yaml" }}\n'),
            ("base/Chart.yaml", "apiVersion: v2\nname: base\nversion: 1.0.0\n"),
        ]:
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    found = crds.crds_in(chart)
    assert [c["metadata"]["name"] for c in found] == ["routes.double.labkit.test"]


def test_documents_that_are_not_crds_are_ignored(tmp_path: Path) -> None:
    manifest = tmp_path / "release.yaml"
    manifest.write_text(yaml.safe_dump_all([{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "x"}}, None, *yaml.safe_load_all(DOUBLES.read_text())]))
    assert len(crds.crds_in(manifest)) == 1


def test_from_cache_reads_the_pinned_crd_release_files(tmp_path: Path) -> None:
    """The wiring: plan the three CRD artifacts, verify their checksums, read their CRDs
    (here, the test doubles as a chart and two manifests in a temporary cache)."""
    from labkit.errors import KitError

    chart = tmp_path / "src/base.tgz"
    chart.parent.mkdir()
    with tarfile.open(chart, "w:gz") as tar:
        tar.add(DOUBLES, arcname="base/files/crd-all.gen.yaml")
    sources = {"istio_base_chart": chart, "knative_serving_crds": DOUBLES, "knative_eventing_crds": tmp_path / "src/empty.yaml"}
    sources["knative_eventing_crds"].write_text("---\n")
    layer = {"istio_base_chart": ("istio", None), "knative_serving_crds": ("knative", None), "knative_eventing_crds": ("knative", "knative_eventing")}
    manifest = cache_manifest.Manifest.model_validate(
        {
            "artifacts": {
                name: {
                    "kind": "manifest",
                    "layer": layer[name][0],
                    "addon": layer[name][1],
                    "description": name,
                    "version_key": "v",
                    "versions": {"1": {"all": {"url": f"https://example.invalid/{src.name}", "sha256": sha256_file(src)}}},
                }
                for name, src in sources.items()
            }
        }
    )
    cache_dir = tmp_path / "cache"
    with pytest.raises(KitError, match=r"no entry for:\n  - istio_base_chart 2 \(the manifest has 1\)"):
        crds.from_cache(cache_dir, manifest, {"v": "2"})
    with pytest.raises(KitError, match="does not hold a verified copy of istio_base_chart, knative_serving_crds, knative_eventing_crds"):
        crds.from_cache(cache_dir, manifest, {"v": "1"})
    for item in cache_manifest.plan(manifest, {"v": "1"}, ["istio", "knative"], addons=["knative_eventing"]):
        target = cache_dir / item.relpath()
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(sources[item.name].read_bytes())
    schemas = crds.from_cache(cache_dir, manifest, {"v": "1"})
    assert schemas.errors(VALID) == []
    (cache_dir / next(i for i in cache_manifest.plan(manifest, {"v": "1"}, ["knative"]) if i.name == "knative_serving_crds").relpath()).write_text("tampered\n")
    with pytest.raises(KitError, match="does not hold a verified copy of knative_serving_crds"):
        crds.from_cache(cache_dir, manifest, {"v": "1"})
