"""Custom resources checked offline against their CRDs' own OpenAPI schemas.

The CRDs are upstream release files in the artifact cache (Istio's base chart, Knative's
serving and eventing CRD manifests); this module reads them there and validates a custom
resource the way the API server does with strict field validation:

- the kind must be defined by a CRD, in a version that is served and not deprecated;
- the object must match that version's ``openAPIV3Schema`` as a *structural* schema:
  a field the schema does not declare is an error (the API server would prune it, and
  ``kubectl apply --validate=strict`` refuses it), unless the schema says
  ``x-kubernetes-preserve-unknown-fields``; ``x-kubernetes-int-or-string`` takes an
  integer or a string; ``nullable`` allows null; ``x-kubernetes-embedded-resource``
  allows apiVersion, kind and metadata;
- ``metadata`` is an ObjectMeta (known fields, string maps for labels and annotations).

The schema keywords themselves (type, enum, required, pattern, bounds, oneOf/anyOf/not)
are checked by the jsonschema library. CEL rules (``x-kubernetes-validations``) are
evaluated with cel-python where the value is present: a rule that yields false is an
error with the rule's message. A rule that cannot be evaluated offline (a Kubernetes CEL
library function such as ``isIP``, a transition rule on ``oldSelf``, a field the server
would default first) is recorded in ``Schemas.unevaluated``, never guessed: the API
server checks those (the e2e suite applies every repository custom resource with a
server-side dry run and strict field validation).
"""

from __future__ import annotations

import functools
import tarfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import celpy
import jsonschema
import yaml

from labkit.cache import manifest as cache_manifest
from labkit.cache import store

CRD = "CustomResourceDefinition"
# ObjectMeta fields a manifest may set (status-like fields are the server's).
OBJECT_META = {
    "name", "generateName", "namespace", "labels", "annotations", "finalizers", "ownerReferences",
    "uid", "resourceVersion", "generation", "creationTimestamp", "deletionTimestamp",
    "deletionGracePeriodSeconds", "managedFields", "selfLink",
}  # fmt: skip
_STRING_MAP = {"type": "object", "additionalProperties": {"type": "string"}}
_VALUE_KEYWORDS = ("allOf", "anyOf", "oneOf")


def crds_in(path: Path) -> list[dict[str, Any]]:
    """The CRDs in a release manifest (YAML) or a Helm chart archive (its ``crds/`` and
    ``files/`` YAML; templates are Go templates and are not read)."""
    if path.name.endswith((".tgz", ".tar.gz")):
        texts = []
        with tarfile.open(path) as tar:
            for member in tar.getmembers():
                parts = Path(member.name).parts
                if member.isfile() and member.name.endswith((".yaml", ".yml")) and len(parts) > 1 and parts[1] in ("crds", "files"):
                    extracted = tar.extractfile(member)
                    if extracted is not None:
                        texts.append(extracted.read().decode())
    else:
        texts = [path.read_text()]
    return [doc for text in texts for doc in yaml.safe_load_all(text) if isinstance(doc, dict) and doc.get("kind") == CRD]


def structural(node: Mapping[str, Any], value_only: bool = False) -> dict[str, Any]:
    """A JSON Schema for one node of a structural OpenAPI v3 schema, with the API server's
    rules made explicit (unknown fields refused, int-or-string, nullable). Inside
    allOf/anyOf/oneOf/not (``value_only``) the node only adds value checks: it neither
    declares types nor prunes fields, so nothing is refused there for being unknown."""
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key.startswith("x-kubernetes-") or key in ("nullable", "description", "default", "example", "externalDocs", "format"):
            continue
        if key == "properties":
            out[key] = {name: structural(sub, value_only) for name, sub in value.items()}
        elif key in ("items", "additionalProperties", "not") and isinstance(value, Mapping):
            out[key] = structural(value, value_only or key == "not")
        elif key in _VALUE_KEYWORDS:
            out[key] = [structural(sub, True) for sub in value]
        else:
            out[key] = value
    if node.get("x-kubernetes-int-or-string"):
        out.pop("type", None)
        out.setdefault("allOf", []).append({"type": ["integer", "string"]})
    if node.get("nullable") and isinstance(out.get("type"), str):
        out["type"] = [out["type"], "null"]
    if value_only or node.get("x-kubernetes-preserve-unknown-fields"):
        return out
    if node.get("x-kubernetes-embedded-resource"):
        props = out.setdefault("properties", {})
        props.setdefault("apiVersion", {"type": "string"})
        props.setdefault("kind", {"type": "string"})
        props.setdefault("metadata", {"type": "object"})
    if _is_object(node) and "additionalProperties" not in node:
        out["additionalProperties"] = False
    return out


def _is_object(node: Mapping[str, Any]) -> bool:
    return node.get("type") == "object" or "properties" in node


def _cel_rules(node: Any) -> int:
    if isinstance(node, Mapping):
        return len(node.get("x-kubernetes-validations", [])) + sum(_cel_rules(v) for v in node.values())
    if isinstance(node, list):
        return sum(_cel_rules(v) for v in node)
    return 0


@dataclass
class Version:
    group: str
    kind: str
    name: str
    served: bool
    deprecated: bool
    validator: jsonschema.Draft7Validator
    cel_rules: int
    schema: Mapping[str, Any]  # the CRD's own openAPIV3Schema (for its CEL rules)


_CEL = celpy.Environment()


@functools.cache
def _program(rule: str) -> Any:
    return _CEL.program(_CEL.compile(rule))


def _cel_checks(node: Mapping[str, Any], value: Any, where: str) -> Iterable[tuple[str, str, bool]]:
    """(where, rule or message, evaluated-and-false?) for every CEL rule over ``value``:
    the rules at this node, then those under its properties, items and map values."""
    if value is None:
        return
    for rule in node.get("x-kubernetes-validations", []):
        text = rule.get("rule", "")
        if "oldSelf" in text:
            yield where, text, False
            continue
        try:
            result = _program(text).evaluate({"self": celpy.json_to_cel(value)})
        except (celpy.CELParseError, celpy.CELEvalError, TypeError, ValueError, KeyError):
            yield where, text, False
            continue
        if isinstance(result, celpy.celtypes.BoolType) and not result:
            yield where, rule.get("message") or f"failed rule: {text}", True
    props = node.get("properties") or {}
    if isinstance(value, Mapping):
        for name, sub in props.items():
            if name in value:
                yield from _cel_checks(sub, value[name], f"{where}.{name}")
        extra = node.get("additionalProperties")
        if isinstance(extra, Mapping):
            for name, item in value.items():
                if name not in props:
                    yield from _cel_checks(extra, item, f"{where}.{name}")
    elif isinstance(value, list) and isinstance(node.get("items"), Mapping):
        for i, item in enumerate(value):
            yield from _cel_checks(node["items"], item, f"{where}.{i}")


@dataclass
class Schemas:
    """The custom resource kinds of a set of CRDs, by (group, version, kind)."""

    versions: dict[tuple[str, str, str], Version] = field(default_factory=dict)
    kinds: dict[tuple[str, str], list[str]] = field(default_factory=dict)
    # CEL rules met in checked resources that could not be evaluated offline: kind, where, rule.
    unevaluated: set[tuple[str, str, str]] = field(default_factory=set)

    @classmethod
    def of(cls, crds: Iterable[Mapping[str, Any]]) -> Schemas:
        schemas = cls()
        for crd in crds:
            spec = crd["spec"]
            group, kind = spec["group"], spec["names"]["kind"]
            for v in spec["versions"]:
                raw = dict((v.get("schema") or {}).get("openAPIV3Schema") or {"type": "object", "x-kubernetes-preserve-unknown-fields": True})
                props = dict(raw.get("properties") or {})
                props["apiVersion"] = {"type": "string"}
                props["kind"] = {"type": "string"}
                props.pop("metadata", None)
                raw["properties"] = props
                schema = structural(raw)
                schema["properties"]["metadata"] = {
                    "type": "object",
                    "properties": {"labels": _STRING_MAP, "annotations": _STRING_MAP, "name": {"type": "string"}, "namespace": {"type": "string"}},
                    "propertyNames": {"enum": sorted(OBJECT_META)},
                }
                schemas.versions[(group, v["name"], kind)] = Version(
                    group, kind, v["name"], bool(v.get("served")), bool(v.get("deprecated")), jsonschema.Draft7Validator(schema), _cel_rules(raw), raw
                )
                schemas.kinds.setdefault((group, kind), []).append(v["name"])
        return schemas

    def errors(self, doc: Mapping[str, Any]) -> list[str]:
        """What the API server would refuse in ``doc`` (empty when it is valid)."""
        group, _, version = str(doc.get("apiVersion", "")).rpartition("/")
        kind = str(doc.get("kind", ""))
        found = self.versions.get((group, version, kind))
        if found is None:
            known = self.kinds.get((group, kind))
            if known:
                return [f"{kind}: version {version} is not defined (the CRD has {', '.join(known)})"]
            return [f"{group}/{version} {kind}: no CRD defines this kind"]
        problems = []
        if not found.served:
            problems.append(f"{kind}: version {version} is not served")
        if found.deprecated:
            problems.append(f"{kind}: version {version} is deprecated")
        for error in sorted(found.validator.iter_errors(doc), key=lambda e: list(e.absolute_path)):
            where = ".".join(str(p) for p in error.absolute_path) or "(root)"
            problems.append(f"{kind} {where}: {error.message}")
        if not problems:
            for where, text, failed in _cel_checks(found.schema, doc, "(root)"):
                if failed:
                    problems.append(f"{kind} {where.removeprefix('(root).')}: {text}")
                else:
                    self.unevaluated.add((kind, where.removeprefix("(root)."), text))
        return problems


# The release files that carry the CRDs of the custom resources the kit and its labs use.
CRD_ARTIFACTS = ("istio_base_chart", "knative_serving_crds", "knative_eventing_crds")


def from_cache(cache_dir: Path, manifest: Any, versions: Mapping[str, str]) -> Schemas:
    """The CRDs of Istio and Knative (with Eventing) from the artifact cache (``manifest``:
    the artifact manifest; ``versions``: the config's). A KitError says which release file
    is not pinned or not fetched yet."""
    from labkit.cache.lock import Lock
    from labkit.errors import KitError

    wanted = cache_manifest.Manifest(artifacts={name: manifest.artifacts[name] for name in CRD_ARTIFACTS})
    items = {i.name: i for i in cache_manifest.plan(wanted, versions, ["istio", "knative"], addons=["knative_eventing"], lock=Lock(cache_dir))}
    absent = [name for name in CRD_ARTIFACTS if store.state_of(cache_dir, items[name]) != "present"]
    if absent:
        raise KitError(
            f"the cache does not hold a verified copy of {', '.join(absent)}: run `./kit cache.fetch` on a connected machine (with istio, knative and addons.knative_eventing on)"
        )
    return Schemas.of(crd for name in CRD_ARTIFACTS for crd in crds_in(cache_dir / items[name].relpath()))
