"""One cluster: its config file, its state folder, its resolved config and its Vagrant.

``Kit`` is the handle every command works on; what the commands do lives beside the
concern it belongs to (``labkit.cluster.lifecycle``, ``labkit.cache.supply``,
``labkit.labs.actions``), as plain functions over a ``Kit``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path

from labkit.cache import fetch as cache_fetch
from labkit.cache import manifest as cache_manifest
from labkit.cache.trust import Mirrors
from labkit.cluster import host
from labkit.cluster.config import load
from labkit.cluster.resolved import Resolved
from labkit.cluster.vagrant import Vagrant
from labkit.files import atomic_write
from labkit.paths import ROOT


class Kit:
    """One cluster: its config file and its state folder."""

    def __init__(
        self,
        root: Path = ROOT,
        config_path: Path | None = None,
        state_dir: Path | None = None,
        say: Callable[[str], None] = print,
        reporter: Callable[[Sequence[cache_manifest.Item]], AbstractContextManager[cache_fetch.Reporter]] | None = None,
    ):
        self.root = root
        # The fetch display: `./kit` shows rich progress bars; the default says one line per artifact.
        self.reporter = reporter or self._line_reporter
        self.config_path = Path(config_path or os.environ.get("LABKIT_CONFIG") or root / "sandbox.yml").resolve()
        self.default_state_dir = root / ".state"
        self.state_dir = Path(state_dir or os.environ.get("LABKIT_STATE_DIR") or self.default_state_dir).resolve()
        self.say = say
        self._resolved: Resolved | None = None

    @contextmanager
    def _line_reporter(self, items: Sequence[cache_manifest.Item]) -> Iterator[cache_fetch.Reporter]:
        say = self.say

        class Lines(cache_fetch.Reporter):
            def done(self, item: cache_manifest.Item, outcome: str) -> None:
                if outcome != "present":
                    say(f"    {item.key}: {outcome}")

        yield Lines()

    # ----------------------------------------------------------------- state files
    @property
    def resolved_path(self) -> Path:
        return self.state_dir / "resolved.json"

    @property
    def inventory_path(self) -> Path:
        return self.state_dir / "inventory.yml"

    @property
    def last_run_path(self) -> Path:
        return self.state_dir / "last-run.json"

    @property
    def first_run_path(self) -> Path:
        """The first provisioning of this cluster (kept until `destroy`, for the benchmark)."""
        return self.state_dir / "first-run.json"

    def vagrant(self) -> Vagrant:
        return Vagrant(self.root, self.state_dir, self.default_state_dir)

    # ----------------------------------------------------------------- config
    def resolve(self, context: host.HostContext | None = None) -> Resolved:
        """Load, validate and resolve the config; write the resolved form the Vagrantfile
        reads, only when it changed (a read-only command such as `status` leaves it be)."""
        if self._resolved is None:
            resolved = load(self.config_path, context or host.context(self.state_dir))
            text = json.dumps(resolved.to_dict(), indent=2) + "\n"
            try:
                unchanged = self.resolved_path.read_text() == text
            except OSError:
                unchanged = False
            if not unchanged:
                atomic_write(self.resolved_path, text)
            self._resolved = resolved
        return self._resolved

    def mirrors(self) -> Mirrors:
        """Where the cache is filled from: the class server once this kit joined a class,
        else upstream through the configured mirrors."""
        config = self.resolve().config
        if config.classroom is not None:
            from labkit.classroom import client

            return client.mirrors(config.classroom)
        m = config.cache.mirrors
        return Mirrors(files=dict(m.files), registries=dict(m.registries))

    @property
    def kubeconfig_path(self) -> Path:
        return self.state_dir / "kubeconfig"

    # ----------------------------------------------------------------- labs
    @property
    def progress_path(self) -> Path:
        return self.state_dir / "labs-progress.json"
