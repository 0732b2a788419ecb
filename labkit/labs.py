"""The lab runner: discovery, checks (✓/✗ with a hint), solve, snapshot reset, progress.

A lab is a folder ``labs/NN-slug/`` with ``lab.yml`` (id, title, layer, needs, minutes,
the images its steps run, steps and the check ids of each), ``README.md`` (the guide, whose
``sh`` blocks are the steps' commands: ``labkit.guide`` runs them for `./kit lab.solve`)
and ``checks.py`` (small named checks).  The runner knows nothing specific to any lab.

A check is a function registered with ``@check(id, hint)`` that takes a ``Nodes`` object
(testinfra hosts by node name) and raises ``AssertionError`` when the step is not done.
"""

from __future__ import annotations

import importlib.util
import json
import shlex
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from labkit.errors import KitError

LABS_DIR = Path(__file__).resolve().parent.parent / "labs"
Layer = Literal["vm", "containers", "kubernetes", "istio", "knative"]
# The config layer each lab layer needs installed (vm and containers: the node layers).
LAYER_SWITCH = {"kubernetes": "kubernetes", "istio": "istio", "knative": "knative"}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Step(_Strict):
    title: str
    checks: list[str]


class LabSpec(_Strict):
    id: Annotated[str, Field(pattern=r"^\d\d$")]
    title: str
    layer: Layer
    needs: list[Layer] = []
    minutes: Annotated[int, Field(ge=1)]
    nodes: list[str] = []  # which nodes the checks look at (empty: the first node)
    # Images the steps run, pulled into containerd on every node by `./kit lab.start` (from
    # the cache, while the kit serves it), so no step needs a registry or a host process.
    images: list[str] = []
    steps: Annotated[list[Step], Field(min_length=1)]


@dataclass(frozen=True)
class Check:
    id: str
    hint: str
    fn: Callable[[Any], None]


@dataclass
class Lab:
    spec: LabSpec
    path: Path
    checks: dict[str, Check] = field(default_factory=dict)

    @property
    def id(self) -> str:
        return self.spec.id

    @property
    def snapshot(self) -> str:
        return f"lab-{self.spec.id}-start"

    def missing_layers(self, enabled: Iterable[str]) -> list[str]:
        on = set(enabled)
        return [LAYER_SWITCH[n] for n in [self.spec.layer, *self.spec.needs] if n in LAYER_SWITCH and LAYER_SWITCH[n] not in on]


# ---------------------------------------------------------------------- check registry

_REGISTRY: list[Check] = []


def check(check_id: str, hint: str) -> Callable[[Callable[[Any], None]], Callable[[Any], None]]:
    """Register a lab check: ``check_id`` as listed in lab.yml, ``hint`` shown when it fails."""

    def wrap(fn: Callable[[Any], None]) -> Callable[[Any], None]:
        _REGISTRY.append(Check(check_id, hint, fn))
        return fn

    return wrap


def _load_checks(path: Path) -> dict[str, Check]:
    _REGISTRY.clear()
    module_spec = importlib.util.spec_from_file_location(f"labkit_lab_{path.parent.name.replace('-', '_')}", path)
    if module_spec is None or module_spec.loader is None:
        raise KitError(f"cannot load {path}")
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    found = {c.id: c for c in _REGISTRY}
    _REGISTRY.clear()
    return found


def discover(labs_dir: Path = LABS_DIR) -> list[Lab]:
    """Every lab under ``labs_dir``, validated: each step's check ids exist in checks.py."""
    labs = []
    for lab_yml in sorted(labs_dir.glob("[0-9][0-9]-*/lab.yml")):
        try:
            spec = LabSpec.model_validate(yaml.safe_load(lab_yml.read_text()))
        except (ValidationError, yaml.YAMLError) as exc:
            raise KitError(f"{lab_yml}: {exc}") from None
        lab = Lab(spec, lab_yml.parent, _load_checks(lab_yml.parent / "checks.py"))
        listed = [c for step in spec.steps for c in step.checks]
        unknown = sorted(set(listed) - set(lab.checks))
        unused = sorted(set(lab.checks) - set(listed))
        if unknown or unused:
            raise KitError(f"{lab_yml}: check ids {unknown} are not defined in checks.py; {unused} are defined but in no step")
        labs.append(lab)
    return labs


def find(labs: list[Lab], lab_id: str) -> Lab:
    wanted = lab_id.zfill(2)
    for lab in labs:
        if lab.id == wanted:
            return lab
    raise KitError(f"no lab {lab_id!r}; the labs are: {', '.join(f'{lab.id} ({lab.spec.title})' for lab in labs)}")


# ---------------------------------------------------------------------- running checks


@dataclass(frozen=True)
class Result:
    id: str
    step: str
    ok: bool
    hint: str
    detail: str
    seconds: float


def run_checks(lab: Lab, nodes: Any, only: Iterable[str] | None = None, workers: int = 8) -> list[Result]:
    """Run every check of ``lab`` (or those in ``only``); the results come in step order.

    Checks only read (each a few commands over the nodes' multiplexed SSH connections or
    a GET on the API), so they run side by side: a lab's checks take about as long as
    its slowest one, not the sum (most of a check's time is waiting on a slow node).
    """
    wanted = None if only is None else set(only)
    todo = [(step, check_id) for step in lab.spec.steps for check_id in step.checks if wanted is None or check_id in wanted]

    def one(item: tuple[Step, str]) -> Result:
        step, check_id = item
        chk = lab.checks[check_id]
        start = time.monotonic()
        try:
            chk.fn(nodes)
            ok, detail = True, ""
        except AssertionError as exc:
            ok, detail = False, str(exc).split("\n")[0]
        except Exception as exc:
            ok, detail = False, f"{type(exc).__name__}: {exc}".split("\n")[0]
        return Result(check_id, step.title, ok, chk.hint, detail, time.monotonic() - start)

    if len(todo) <= 1 or workers <= 1:
        return [one(item) for item in todo]
    with ThreadPoolExecutor(max_workers=min(workers, len(todo))) as pool:
        return list(pool.map(one, todo))  # map keeps the order of ``todo``


PULL_FAILURES = ("ErrImagePull", "ImagePullBackOff", "ErrImageNeverPull")


def pull_problems(lab: Lab, nodes: Any) -> list[str]:
    """Pods of the lab's namespace (labNN) whose image cannot be pulled, with what to do: a
    failed check whose real cause is an image reads as one. Empty for labs below Kubernetes."""
    if "kubernetes" not in (lab.spec.layer, *lab.spec.needs):
        return []
    try:
        pods = (nodes.api(f"/api/v1/namespaces/lab{lab.id}/pods") or {}).get("items", [])
    except KitError:
        return []
    found = []
    for pod in pods:
        for status in pod.get("status", {}).get("containerStatuses", []) + pod.get("status", {}).get("initContainerStatuses", []):
            waiting = status.get("state", {}).get("waiting") or {}
            if waiting.get("reason") in PULL_FAILURES:
                found.append(
                    f"pod {pod['metadata']['name']} cannot pull {status.get('image')} ({waiting['reason']}). `./kit lab.start {lab.id}` puts the lab's images"
                    f" on every node; if this image is not one of them (lab.yml `images`), run `./kit cache.serve` on the host while the pod pulls"
                )
    return found


# ---------------------------------------------------------------------- progress


class Progress:
    """Each lab's state, kept in a local JSON file an instructor can collect."""

    def __init__(self, path: Path):
        self.path = path
        try:
            data = json.loads(path.read_text()) if path.exists() else {}
        except (OSError, ValueError) as exc:
            raise KitError(f"the lab progress file {path} cannot be read ({exc}): fix it, or remove it to start the record afresh") from None
        self.data: dict[str, dict[str, Any]] = data if isinstance(data, dict) else {}

    def save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.data, indent=2, sort_keys=True) + "\n")
        tmp.replace(self.path)

    def started(self, lab: Lab) -> None:
        entry = self.data.setdefault(lab.id, {})
        entry.setdefault("started", _now())
        self.save()

    def checked(self, lab: Lab, results: list[Result]) -> None:
        entry = self.data.setdefault(lab.id, {})
        entry["checks"] = {r.id: r.ok for r in results}
        entry["last_check"] = _now()
        if all(r.ok for r in results):
            entry.setdefault("passed", _now())
        self.save()

    def solved(self, lab: Lab) -> None:
        """`lab.solve` did the steps (the instructor sees it beside the student's own checks)."""
        entry = self.data.setdefault(lab.id, {})
        entry["solved_by_kit"] = _now()
        self.save()

    def reset(self, lab: Lab) -> None:
        entry = self.data.setdefault(lab.id, {})
        entry.pop("checks", None)
        entry["reset"] = _now()
        self.save()

    def status(self, lab: Lab) -> str:
        entry = self.data.get(lab.id)
        if not entry:
            return "not started"
        if "passed" in entry:
            return "passed, after lab.solve" if entry.get("solved_by_kit", "~") <= entry["passed"] else "passed"
        checks: Mapping[str, bool] = entry.get("checks", {})
        done = sum(1 for ok in checks.values() if ok)
        return f"in progress ({done}/{len(checks)} checks)" if checks else "started"


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")


# ---------------------------------------------------------------------- what checks see


class Nodes:
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
        from labkit.samples import LAB_IMAGE

        return LAB_IMAGE
