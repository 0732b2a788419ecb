"""Writing files so that Ctrl-C never leaves half of one: one helper for the kit."""

from __future__ import annotations

from pathlib import Path


def atomic_write(path: Path, text: str | bytes, mode: int = 0o644) -> None:
    """Write via a temporary file beside ``path`` and rename it into place."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    if isinstance(text, bytes):
        tmp.write_bytes(text)
    else:
        tmp.write_text(text)
    tmp.chmod(mode)
    tmp.replace(path)
