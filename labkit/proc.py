"""Running external commands with clear errors instead of tracebacks."""

from __future__ import annotations

import shlex
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path

from labkit.errors import KitError


def require(tool: str, hint: str) -> str:
    """Return the path of ``tool`` or fail with ``hint`` telling how to install it."""
    path = shutil.which(tool)
    if path is None:
        raise KitError(f"`{tool}` is not installed or not on PATH. {hint}")
    return path


def run(
    argv: Sequence[str | Path],
    *,
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
    capture: bool = False,
    check: bool = True,
    timeout: float | None = None,
    what: str | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run ``argv``; on failure raise KitError naming the command and its last output."""
    args = [str(a) for a in argv]
    try:
        proc = subprocess.run(
            args,
            cwd=cwd,
            env=dict(env) if env is not None else None,
            text=True,
            capture_output=capture,
            timeout=timeout,
            check=False,
        )
    except FileNotFoundError as exc:
        raise KitError(f"cannot run `{args[0]}`: not found. Run `./kit doctor` to see what is missing.") from exc
    except subprocess.TimeoutExpired as exc:
        raise KitError(f"{what or shlex.join(args)} did not finish within {timeout:.0f} s") from exc
    if check and proc.returncode != 0:
        tail = ""
        if capture:
            out = (proc.stderr or "") + (proc.stdout or "")
            tail = "\n" + "\n".join(out.strip().splitlines()[-15:])
        raise KitError(f"{what or shlex.join(args)} failed (exit {proc.returncode}){tail}")
    return proc
