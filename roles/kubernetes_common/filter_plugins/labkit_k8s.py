"""Filters the Kubernetes roles share.

Upstream release manifests (Flannel, metrics-server, local-path-provisioner) are
artifacts in the host's cache, never copied into the repository.  The roles read them
on the controller, adapt them with these filters (the private interface, the pod range,
extra arguments) and apply the result with ``kubernetes.core.k8s``.  Every filter is a
pure function of the documents, so ``tests/unit/roles/test_k8s_filters.py`` tests them
directly.  ``labkit_require_images`` refuses a manifest whose images are not the pinned
ones the artifact manifest lists, so a cache that drifted from the pins fails early.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterable, Mapping
from typing import Any

import yaml

try:
    from ansible.errors import AnsibleFilterError
except ImportError:  # the unit tests import this module without Ansible's plugin loader
    AnsibleFilterError = ValueError  # type: ignore[misc,assignment]

Doc = dict[str, Any]
POD_TEMPLATE_KINDS = {"Deployment", "DaemonSet", "StatefulSet", "ReplicaSet", "Job"}


def _docs(docs: Iterable[Doc | None]) -> list[Doc]:
    return [copy.deepcopy(d) for d in docs if d]


def _pod_spec(doc: Mapping[str, Any]) -> dict[str, Any] | None:
    if doc.get("kind") == "Pod":
        return doc.get("spec")
    if doc.get("kind") in POD_TEMPLATE_KINDS:
        return doc.get("spec", {}).get("template", {}).get("spec")
    if doc.get("kind") == "CronJob":
        return doc.get("spec", {}).get("jobTemplate", {}).get("spec", {}).get("template", {}).get("spec")
    return None


def _find(docs: list[Doc], kind: str, name: str) -> Doc:
    for doc in docs:
        if doc.get("kind") == kind and doc.get("metadata", {}).get("name") == name:
            return doc
    raise AnsibleFilterError(f"the manifest has no {kind} named {name!r}: is the cached file the pinned release?")


def images(docs: Iterable[Doc | None]) -> list[str]:
    """Every container image the documents reference, in order, without repeats."""
    out: list[str] = []
    for doc in _docs(docs):
        spec = _pod_spec(doc) or {}
        for container in [*spec.get("initContainers", []), *spec.get("containers", [])]:
            if container.get("image") and container["image"] not in out:
                out.append(container["image"])
    return out


def normalize_image(ref: str) -> str:
    """The full form of an image reference: ``busybox:1`` is ``docker.io/library/busybox:1``."""
    first, _, rest = ref.partition("/")
    if not rest:
        return f"docker.io/library/{ref}"
    if "." not in first and ":" not in first and first != "localhost":
        return f"docker.io/{ref}"
    return ref


def require_images(docs: Iterable[Doc | None], pinned: Iterable[str]) -> list[Doc]:
    """The documents unchanged, after checking they use only the pinned images."""
    docs = _docs(docs)
    pinned = [normalize_image(p) for p in pinned]
    unknown = [i for i in images(docs) if normalize_image(i) not in pinned]
    if unknown:
        raise AnsibleFilterError(
            f"the manifest uses images that are not pinned: {', '.join(unknown)} (pinned: {', '.join(pinned)}). "
            "Is the cached file the release labkit/artifacts.yml names? Check with ./kit cache.status"
        )
    return docs


def require_digests(docs: Iterable[Doc | None]) -> list[Doc]:
    """The documents unchanged, after checking every container image is pinned by digest
    (release manifests such as Knative's pin theirs; the manifest's checksum then pins them)."""
    docs = _docs(docs)
    loose = [i for i in images(docs) if "@sha256:" not in i]
    if loose:
        raise AnsibleFilterError(f"the manifest has images not pinned by digest: {', '.join(loose)}")
    return docs


def configmap_data(docs: Iterable[Doc | None], name: str, data: Mapping[str, Any]) -> list[Doc]:
    """Set keys of one ConfigMap's data (values as strings, as the API stores them)."""
    docs = _docs(docs)
    target = _find(docs, "ConfigMap", name).setdefault("data", {})
    target.update(
        {str(k): v if isinstance(v, str) else json.dumps(v) if isinstance(v, (dict, list)) else str(v).lower() if isinstance(v, bool) else str(v) for k, v in data.items()}
    )
    return docs


def single_replica_disruptions(docs: Iterable[Doc | None]) -> list[Doc]:
    """Every PodDisruptionBudget set to allow one pod evicted at a time (``maxUnavailable: 1``
    instead of ``minAvailable``). Release manifests sized for HA (Knative's ``minAvailable:
    80%``) would otherwise block ``kubectl drain`` for ever on a laptop, where each of those
    components runs one replica."""
    docs = _docs(docs)
    for doc in docs:
        if doc.get("kind") == "PodDisruptionBudget":
            spec = doc.setdefault("spec", {})
            spec.pop("minAvailable", None)
            spec["maxUnavailable"] = 1
    return docs


def container_args(docs: Iterable[Doc | None], kind: str, name: str, container: str, args: Iterable[str]) -> list[Doc]:
    """Add command-line arguments to one container; ``--flag=value`` arguments replace every ``--flag=...``."""
    docs = _docs(docs)
    spec = _pod_spec(_find(docs, kind, name)) or {}
    for c in spec.get("containers", []):
        if c.get("name") == container:
            args = list(args)
            replaced = {a.split("=", 1)[0] + "=" for a in args if "=" in a}
            current = [a for a in c.get("args", []) if not any(a.startswith(flag) for flag in replaced)]
            c["args"] = current + [a for a in args if a not in current]
            return docs
    raise AnsibleFilterError(f"{kind} {name} has no container named {container!r}")


def annotate(docs: Iterable[Doc | None], kind: str, name: str, annotations: Mapping[str, str]) -> list[Doc]:
    """Set annotations on one object."""
    docs = _docs(docs)
    meta = _find(docs, kind, name).setdefault("metadata", {})
    meta.setdefault("annotations", {}).update({str(k): str(v) for k, v in annotations.items()})
    return docs


def configmap_json(docs: Iterable[Doc | None], name: str, key: str, values: Mapping[str, Any]) -> list[Doc]:
    """Merge top-level values into a JSON document kept under one ConfigMap key."""
    docs = _docs(docs)
    data = _find(docs, "ConfigMap", name).setdefault("data", {})
    try:
        current = json.loads(data[key])
    except (KeyError, ValueError) as exc:
        raise AnsibleFilterError(f"ConfigMap {name} has no JSON under {key!r}: {exc}") from None
    current.update(values)
    data[key] = json.dumps(current, indent=2)
    return docs


def configmap_pod_image(docs: Iterable[Doc | None], name: str, key: str, image: str) -> list[Doc]:
    """Pin the image of every container of a Pod kept as YAML under one ConfigMap key."""
    docs = _docs(docs)
    data = _find(docs, "ConfigMap", name).setdefault("data", {})
    try:
        pod = yaml.safe_load(data[key])
    except (KeyError, yaml.YAMLError) as exc:
        raise AnsibleFilterError(f"ConfigMap {name} has no Pod YAML under {key!r}: {exc}") from None
    for container in (pod.get("spec") or {}).get("containers", []):
        container["image"] = image
    data[key] = yaml.safe_dump(pod, sort_keys=False)
    return docs


def _ready(node: Mapping[str, Any]) -> bool:
    conditions = (node.get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)


def nodes_not_ready(nodes: Iterable[Mapping[str, Any]]) -> list[str]:
    """Names of the nodes whose Ready condition is not True."""
    return [n.get("metadata", {}).get("name", "?") for n in nodes if not _ready(n)]


def pods_not_running(pods: Iterable[Mapping[str, Any]]) -> list[str]:
    """``namespace/name (phase: reason)`` of each pod neither Running nor Succeeded."""
    out = []
    for pod in pods:
        status = pod.get("status") or {}
        phase = status.get("phase", "Unknown")
        if phase in ("Running", "Succeeded"):
            continue
        waiting = [cs.get("state", {}).get("waiting", {}).get("reason") for cs in status.get("containerStatuses") or [] if cs.get("state", {}).get("waiting")]
        meta = pod.get("metadata", {})
        reason = ", ".join(r for r in waiting if r) or status.get("reason") or ""
        out.append(f"{meta.get('namespace', '?')}/{meta.get('name', '?')} ({phase}{': ' + reason if reason else ''})")
    return out


class FilterModule:
    def filters(self) -> dict[str, Any]:
        return {
            "labkit_images": images,
            "labkit_normalize_image": normalize_image,
            "labkit_require_images": require_images,
            "labkit_container_args": container_args,
            "labkit_require_digests": require_digests,
            "labkit_configmap_data": configmap_data,
            "labkit_single_replica_disruptions": single_replica_disruptions,
            "labkit_annotate": annotate,
            "labkit_configmap_json": configmap_json,
            "labkit_configmap_pod_image": configmap_pod_image,
            "labkit_nodes_not_ready": nodes_not_ready,
            "labkit_pods_not_running": pods_not_running,
        }
