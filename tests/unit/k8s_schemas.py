"""Offline checks of rendered configuration against the published APIs.

* ``k8s_errors``: a Kubernetes object against the Kubernetes 1.36 OpenAPI schemas in
  their strict JSON Schema form (the pinned ``kubernetes-validate`` package ships them;
  unknown fields are errors).
* ``kubeadm_errors``: a kubeadm configuration document against the field reference in
  ``data/kubeadm-config-api.yml`` (kinds, field names, value types, enums, required).
"""

from __future__ import annotations

import json
import re
from functools import cache
from importlib.resources import files
from pathlib import Path
from typing import Any

import jsonschema
import yaml
from referencing import Registry, Resource

KUBERNETES_SCHEMA_VERSION = "v1.36.0"
DURATION = re.compile(r"^(\d+(\.\d+)?(ns|us|µs|ms|s|m|h))+$")
API = Path(__file__).with_name("data") / "kubeadm-config-api.yml"
ROOT = Path(__file__).resolve().parents[2]
# Custom resources (Istio, Knative): not in the Kubernetes schemas; checked against their
# CRDs (labkit.cache.crds) and, on a connected machine, by the API server.
CUSTOM_GROUPS = {"networking.istio.io": "v1", "security.istio.io": "v1", "serving.knative.dev": "v1", "sources.knative.dev": "v1"}


def repo_manifests() -> list[tuple[str, dict[str, Any]]]:
    """Every document of the manifests the labs and the e2e suites apply, named file#index."""
    out = []
    for path in sorted([*ROOT.glob("labs/*/manifests/*.yaml"), *ROOT.glob("tests/e2e/*/*.yaml")]):
        out += [(f"{path.relative_to(ROOT)}#{i}", d) for i, d in enumerate(yaml.safe_load_all(path.read_text())) if d]
    return out


def repo_custom_resources() -> list[tuple[str, dict[str, Any]]]:
    return [(where, d) for where, d in repo_manifests() if d["apiVersion"].partition("/")[0] in CUSTOM_GROUPS]


def _schema_dir():  # type: ignore[no-untyped-def]
    return files("kubernetes_validate") / "kubernetes-json-schema" / f"{KUBERNETES_SCHEMA_VERSION}-local-strict"


@cache
def _registry() -> Registry:
    return Resource.from_contents(json.loads((_schema_dir() / "_definitions.json").read_text())) @ Registry()


def k8s_errors(doc: dict[str, Any]) -> list[str]:
    """Every way ``doc`` breaks the Kubernetes 1.36 schema of its kind ([] when valid)."""
    api_version, kind = doc.get("apiVersion", ""), doc.get("kind", "")
    group, _, version = api_version.rpartition("/")
    name = f"{kind.lower()}-{group.split('.')[0]}-{version}.json" if group else f"{kind.lower()}-{version}.json"
    path = _schema_dir() / name
    if not path.is_file():
        return [f"no Kubernetes {KUBERNETES_SCHEMA_VERSION} schema for {api_version} {kind}"]
    validator = jsonschema.Draft202012Validator(json.loads(path.read_text()), registry=_registry())
    return [f"{kind} {doc.get('metadata', {}).get('name', '?')}: {'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(doc)]


@cache
def _api() -> dict[str, Any]:
    return yaml.safe_load(API.read_text())


def kubeadm_errors(doc: dict[str, Any]) -> list[str]:
    """Every way ``doc`` breaks the kubeadm configuration API reference ([] when valid)."""
    api = _api()
    kinds = api["kinds"].get(doc.get("apiVersion"))
    if kinds is None:
        return [f"apiVersion {doc.get('apiVersion')!r} is not one of {', '.join(api['kinds'])}"]
    type_name = kinds.get(doc.get("kind"))
    if type_name is None:
        return [f"kind {doc.get('kind')!r} is not in {doc['apiVersion']} ({', '.join(kinds)})"]
    return _check(doc, type_name, doc["kind"])


def _check(value: Any, type_name: str, where: str) -> list[str]:
    api = _api()
    if type_name.startswith("[") and type_name.endswith("]"):
        if not isinstance(value, list):
            return [f"{where}: expected a list, got {type(value).__name__}"]
        return [e for i, v in enumerate(value) for e in _check(v, type_name[1:-1], f"{where}[{i}]")]
    if type_name.startswith("enum:"):
        allowed = type_name[5:].split("|")
        return [] if value in allowed else [f"{where}: {value!r} is not one of {', '.join(allowed)}"]
    if type_name == "any":
        return []
    if type_name == "str":
        return [] if isinstance(value, str) else [f"{where}: expected a string, got {value!r}"]
    if type_name == "int":
        return [] if isinstance(value, int) and not isinstance(value, bool) else [f"{where}: expected an integer, got {value!r}"]
    if type_name == "bool":
        return [] if isinstance(value, bool) else [f"{where}: expected true or false, got {value!r}"]
    if type_name == "duration":
        return [] if isinstance(value, str) and DURATION.match(value) else [f"{where}: {value!r} is not a duration such as 4m0s"]
    spec = api["types"][type_name]
    if not isinstance(value, dict):
        return [f"{where}: expected a mapping ({type_name}), got {type(value).__name__}"]
    errors = [f"{where}: unknown field {key!r} (not in {type_name})" for key in value if key not in spec["fields"]]
    errors += [f"{where}: missing required field {key!r}" for key in spec.get("required", []) if key not in value]
    for key, sub in value.items():
        if key in spec["fields"]:
            errors += _check(sub, spec["fields"][key], f"{where}.{key}")
    return errors


def load_filters() -> Any:
    """The Kubernetes roles' filter plugin, imported from its file (Ansible loads it by path too)."""
    from labkit.contract import role_filters

    return role_filters()
