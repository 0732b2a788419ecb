"""Config samples shared by the unit tests: a valid cluster and how to write one to disk."""

from __future__ import annotations

import textwrap
from pathlib import Path

from labkit.cluster.resolved import HostContext

VALID = textwrap.dedent(
    """\
    name: sandbox
    provider: libvirt
    nodes:
      - {name: cp1, role: control-plane, cpus: 2, memory: 2560}
      - {name: worker1, role: worker, cpus: 2, memory: 2560}
    network:
      cidr: 192.168.56.0/24
    layers: {kubernetes: true, istio: true, knative: true}
    versions:
      kubernetes: 1.36.4
      containerd: 2.3.4
      runc: 1.4.3
      cni_plugins: 1.9.1
      cni: flannel
      cni_version: 0.28.9
      istio: 1.30.5
      knative: 1.23.0
    """
)
LIBVIRT_HOST = HostContext(system="Linux", providers=("libvirt",))


def write(tmp_path: Path, text: str, override: str | None = None) -> Path:
    path = tmp_path / "sandbox.yml"
    path.write_text(text)
    if override is not None:
        (tmp_path / "sandbox.local.yml").write_text(override)
    return path
