"""Running a lab's checks: ✓/✗ with a hint, side by side, results in step order; and the
pods of the lab that cannot pull their image, named with what to do.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from labkit.errors import KitError
from labkit.labs.discovery import Lab, Step, Why
from labkit.labs.words import say_in

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
            said = exc.args[0] if exc.args else ""
            ok, detail = False, said if isinstance(said, Why) else str(exc).split("\n")[0]
        except Exception as exc:
            ok, detail = False, f"{type(exc).__name__}: {exc}".split("\n")[0]
        return Result(check_id, step.title, ok, chk.hint, detail, time.monotonic() - start)

    if len(todo) <= 1 or workers <= 1:
        return [one(item) for item in todo]
    with ThreadPoolExecutor(max_workers=min(workers, len(todo))) as pool:
        return list(pool.map(one, todo))  # map keeps the order of ``todo``


PULL_FAILURES = ("ErrImagePull", "ImagePullBackOff", "ErrImageNeverPull")


def pull_problems(lab: Lab, nodes: Any, language: str = "en") -> list[str]:
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
                found.append(say_in(language, "cannot_pull", pod=pod["metadata"]["name"], image=status.get("image"), reason=waiting["reason"], id=lab.id))
    return found
