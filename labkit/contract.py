"""The contract between the Python side and the Ansible side, read in one place.

The roles declare what they need; Python reads it only through these functions:

- ``role_defaults()``: every role's ``defaults/main.yml`` (the documented defaults the
  budget renders and the Debian lock reads its ``<role>_packages`` lists from);
- ``role_layer()``: which layer playbook (``playbooks/<layer>.yml``) runs a role;
- ``role_filters()``: the Kubernetes roles' filter plugin, imported from its file as
  Ansible loads it, so the kit checks manifests exactly as the roles do.

The other half of the contract is what Python gives the roles: the inventory's ``kit``
variable (``labkit.cluster.inventory``, versioned by ``KIT_VARS_VERSION``) and the
artifact manifest (``labkit/artifacts.yml``).
"""

from __future__ import annotations

import functools
import importlib.util
from pathlib import Path
from typing import Any

import yaml

from labkit.errors import KitError
from labkit.paths import PLAYBOOKS, ROLES

PLUGIN = ROLES / "kubernetes_common/filter_plugins/labkit_k8s.py"
LAYER_PLAYBOOKS = ("kubernetes", "istio", "knative")


def role_defaults(roles_dir: Path = ROLES) -> dict[str, dict[str, Any]]:
    """Each role's defaults, by role name (roles in name order)."""
    out: dict[str, dict[str, Any]] = {}
    for path in sorted(roles_dir.glob("*/defaults/main.yml")):
        try:
            data = yaml.safe_load(path.read_text()) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise KitError(f"cannot read the role defaults {path}: {exc}") from None
        out[path.parent.parent.name] = data if isinstance(data, dict) else {}
    return out


def all_defaults(roles_dir: Path = ROLES) -> dict[str, Any]:
    """Every role's defaults in one mapping (they are role-prefixed, so none collide)."""
    merged: dict[str, Any] = {}
    for data in role_defaults(roles_dir).values():
        merged.update(data)
    return merged


def _named(entries: list[Any]) -> list[str]:
    return [e["role"] if isinstance(e, dict) else str(e) for e in entries or []]


def role_dependencies(role: str, roles_dir: Path = ROLES) -> list[str]:
    """The roles a role depends on (its meta/main.yml `dependencies`)."""
    meta = roles_dir / role / "meta/main.yml"
    data = (yaml.safe_load(meta.read_text()) or {}) if meta.exists() else {}
    return _named(data.get("dependencies", []))


def role_layer(role: str, playbooks_dir: Path = PLAYBOOKS, roles_dir: Path = ROLES) -> str:
    """The layer a role belongs to: the first layer playbook that runs it, by name or as a
    dependency of a role it names (kubernetes_common runs with cni_flannel), else `node`."""
    for layer in LAYER_PLAYBOOKS:
        book = playbooks_dir / f"{layer}.yml"
        if book.exists():
            named = [r for play in yaml.safe_load(book.read_text()) or [] for r in _named(play.get("roles", []))]
            if role in named or any(role in role_dependencies(r, roles_dir) for r in named):
                return layer
    return "node"


@functools.cache
def role_filters() -> Any:
    spec = importlib.util.spec_from_file_location("labkit_k8s", PLUGIN)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load the roles' filter plugin {PLUGIN}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
