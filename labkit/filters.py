"""The Kubernetes roles' filter plugin (roles/kubernetes_common/filter_plugins), imported
from its file as Ansible loads it, so the kit checks manifests exactly as the roles do."""

from __future__ import annotations

import functools
import importlib.util
from pathlib import Path
from typing import Any

PLUGIN = Path(__file__).resolve().parents[1] / "roles/kubernetes_common/filter_plugins/labkit_k8s.py"


@functools.cache
def role_filters() -> Any:
    spec = importlib.util.spec_from_file_location("labkit_k8s", PLUGIN)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load the roles' filter plugin {PLUGIN}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
