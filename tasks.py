"""invoke entry point. The tasks live in labkit/cli.py; run `invoke --list` (or `./kit --list`).

`invoke up` works from any Invoke (pipx, `apt install python3-invoke`, a plain venv):
when this Python lacks the kit's pinned requirements, the command is handed over to
`./kit`, which creates the kit's own environment (.venv) once and runs the same task
there.
"""

import os
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent

try:
    from labkit.cli import namespace
except ImportError as exc:  # an Invoke outside the kit's environment
    if os.environ.get("LABKIT_HANDED_OVER"):
        sys.exit(f"✗ the kit's environment is broken ({exc}): remove {HERE / '.venv'} and run `./kit --version` to create it again")
    kit = HERE / "kit"
    if os.name != "posix" or not os.access(kit, os.X_OK):
        sys.exit(f"✗ this Invoke's Python lacks the kit's requirements ({exc.name}), and {kit} cannot run here: use `./kit` from a POSIX shell (Linux, macOS, WSL)")
    print(f"invoke: this Python lacks the kit's requirements ({exc.name}); handing over to ./kit, which sets up .venv once", file=sys.stderr, flush=True)
    os.environ["LABKIT_HANDED_OVER"] = "1"
    os.execv(str(kit), [str(kit), *sys.argv[1:]])  # noqa: S606 - our own front door, with the arguments Invoke got

ns = namespace
