"""What a check gets (``CheckContext``): testinfra hosts by node name over the kit's
inventory, the Kubernetes API, the cluster's snapshots, and the lab image in the cache.
A check raises ``AssertionError`` when its step is not done.
"""

from __future__ import annotations

import shlex
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from labkit.errors import KitError

# ---------------------------------------------------------------------- what checks see


class CheckContext:
    """What a check gets: testinfra hosts by node name (over the kit's inventory, SSH
    connections reused), the cluster's snapshots, and the lab image in the cache."""

    def __init__(
        self,
        inventory: Path,
        names: list[str],
        snapshot_lister: Callable[[str], list[str]],
        control_dir: Path | None = None,
        kubeconfig: Path | None = None,
        state_dir: Path | None = None,
    ):
        self.inventory = inventory
        self.kubeconfig = kubeconfig
        self.state_dir = state_dir  # the host's state folder (what `./kit lab.ladder` writes)
        self._api_client: Any = None
        self.names = names
        self.control_dir = control_dir
        self._hosts: dict[str, Any] = {}
        self._lock = threading.Lock()  # checks run side by side: one connection per node
        self._snapshots = snapshot_lister
        data = (yaml.safe_load(inventory.read_text()) if inventory.exists() else None) or {}
        self.kit: dict[str, Any] = data.get("all", {}).get("vars", {}).get("kit", {})
        self._hostvars: dict[str, dict[str, Any]] = {}
        stack = [data.get("all", {})]
        while stack:
            group = stack.pop()
            self._hostvars.update(group.get("hosts") or {})
            stack.extend((group.get("children") or {}).values())

    def __getitem__(self, name: str) -> Any:
        """testinfra's SSH backend for node ``name``, one multiplexed connection per node."""
        with self._lock:
            return self._host(name)

    def _host(self, name: str) -> Any:
        if name not in self._hosts:
            import testinfra

            hv = self._hostvars.get(name)
            if hv is None:
                raise KitError(f"{name} is not in the inventory {self.inventory}")
            options: dict[str, Any] = {"ssh_extra_args": hv.get("ansible_ssh_common_args", ""), "timeout": 30}
            if hv.get("ansible_ssh_private_key_file"):
                options["ssh_identity_file"] = hv["ansible_ssh_private_key_file"]
            if self.control_dir is not None:
                self.control_dir.mkdir(parents=True, exist_ok=True)
                # testinfra formats commands with %, so the ssh token %C is written %%C; it
                # puts the path into a shell command as it is, so it is quoted here (a
                # checkout path with a space).
                options.update(controlpath=shlex.quote(str(self.control_dir / "ti-%%C")), controlpersist=120)
            spec = f"ssh://{hv.get('ansible_user', 'vagrant')}@{hv['ansible_host']}:{hv.get('ansible_port', 22)}"
            self._hosts[name] = testinfra.get_host(spec, **options)
        return self._hosts[name]

    def api(self, path: str) -> dict[str, Any] | None:
        """GET one Kubernetes API path with the Kubernetes client (the host's admin
        kubeconfig, `./kit kubeconfig`); the JSON as a dict, or None when it does not exist."""
        from kubernetes import client, config

        with self._lock:
            if self._api_client is None:
                if self.kubeconfig is None or not self.kubeconfig.exists():
                    raise KitError("no kubeconfig for the lab checks: run `./kit kubeconfig`")
                self._api_client = config.new_client_from_config(str(self.kubeconfig))
        try:
            data = self._api_client.call_api(path, "GET", auth_settings=["BearerToken"], response_type="object", _return_http_data_only=True, _request_timeout=10)
        except client.ApiException as exc:
            if exc.status == 404:
                return None
            raise KitError(f"the API server answered {exc.status} for {path}: {exc.reason}") from None
        return dict(data)

    def text(self, path: str, node: str | None = None) -> str | None:
        """The text of the file at ``path`` on ``node`` (the first node), or None when it
        cannot be read: one command (`cat`) where testinfra's `file.exists` and then
        `file.content_string` are two (each a round trip to a node with one emulated CPU)."""
        result = self[node or self.first_name].run("cat -- %s", path)
        return str(result.stdout) if result.rc == 0 else None

    @property
    def first_name(self) -> str:
        return self.names[0]

    @property
    def first(self) -> Any:
        return self[self.first_name]

    def snapshots(self, name: str) -> list[str]:
        return self._snapshots(name)

    @property
    def image_ref(self) -> str:
        """The image the labs run in containerd: the kit's own sample image, which `./kit up`
        builds into every cache (no upstream image needed, whatever layers are on)."""
        from labkit.labs.samples import LAB_IMAGE

        return LAB_IMAGE
