"""The connected-machine cluster shared by the layer suites (marker `k8s`).

One cluster (tests/e2e/k8s-cluster.yml: Kubernetes, Istio and Knative) serves the
Kubernetes and the mesh/serverless suites; `k8s_cluster` and `api` are session fixtures
(tests/e2e/conftest.py). The suites are skipped, with the reason printed, when the
cache lacks the pinned upstream files (never faked).
"""

from __future__ import annotations

import os
import shutil
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from labkit.cache import store, supply
from labkit.cluster.kit import Kit
from labkit.errors import KitError
from tests.e2e.harness import ROOT, Cluster, record

CONFIG = ROOT / "tests/e2e/k8s-cluster.yml"


def _cache_problem(k: Kit) -> str | None:
    try:
        items = supply.cache_items(k)
    except KitError as exc:
        entries = [line.strip(" -") for line in str(exc).splitlines() if line.startswith("  - ")]
        return f"{len(entries)} artifact(s) have no pinned checksum yet, e.g. {entries[0] if entries else exc}"
    missing = [i.name for i in items if store.state_of(k.resolve().cache_dir, i) != "present"]
    return f"the artifact cache lacks {len(missing)} item(s), e.g. {', '.join(missing[:3])}: run `./kit cache.fetch`" if missing else None


def k8s_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    state = tmp_path_factory.mktemp("k8se2e-state")
    problem = _cache_problem(Kit(config_path=CONFIG, state_dir=state, say=lambda _: None))
    if problem:
        print(f"\nConnected-machine suites skipped: {problem}", flush=True)
        pytest.skip(f"needs a connected machine: {problem}")
    if shutil.which("vagrant") is None or not Path("/run/systemd/system").is_dir():
        pytest.skip("the connected-machine suites need vagrant and a systemd host with libvirtd (the host reaches the API server)")
    env = {**os.environ, "LABKIT_CONFIG": str(CONFIG), "LABKIT_STATE_DIR": str(state), "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    c = Cluster(env=env, netns=None, state_dir=state)
    try:
        yield c
    finally:
        if not os.environ.get("LABKIT_E2E_KEEP"):
            c.kit("destroy", "--yes", check=False)


def api_client(k8s: Cluster) -> Any:
    from kubernetes import client, config

    start = time.monotonic()
    k8s.kit("up", timeout=5400)
    record("k8s: first `up` (3 VMs, every layer)", time.monotonic() - start)
    k8s.kit("kubeconfig")
    config.load_kube_config(str(k8s.state_dir / "kubeconfig"))
    return client


def wait_for(what: str, probe: Callable[[], Any], timeout: float = 300) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        try:
            value = probe()
            if value:
                return value
        except Exception as exc:  # the API may not answer yet: retried until the deadline
            last = exc
        else:
            last = None
        if time.monotonic() > deadline:
            pytest.fail(f"{what}: not within {timeout:.0f} s (last error: {last})")
        time.sleep(3)
