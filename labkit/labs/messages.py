"""The failure messages a lab's checks can say, read from their source (``ast``): each
``assert``'s message and each ``why()`` template, in checks.py and in the ``labkit.labs``
modules it imports. The test of the translations holds every lab's ``details.<lang>.yml``
to this list and names each message that is missing or left over."""

from __future__ import annotations

import ast
import string
from dataclasses import dataclass
from pathlib import Path

from labkit.paths import ROOT


@dataclass(frozen=True)
class Message:
    text: str  # the English template (or a plain assert's text)
    fields: frozenset[str]
    where: str  # file:line


def fields(template: str) -> frozenset[str]:
    return frozenset(name for _, name, _, _ in string.Formatter().parse(template) if name)


def _why_template(node: ast.AST) -> str | None:
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "why":
        first = node.args[0] if node.args else None
        if isinstance(first, ast.Constant) and isinstance(first.value, str):
            return first.value
    return None


def _passes_on(node: ast.AST) -> bool:
    """`raise AssertionError(exc.args[0])`: another message (a why() of an imported module)."""
    return isinstance(node, ast.Subscript) and isinstance(node.value, ast.Attribute) and node.value.attr == "args"


def read(path: Path) -> tuple[list[Message], list[str]]:
    """The messages of one file, and where a message cannot be translated (an f-string or
    other expression: use ``why()``)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: list[Message] = []
    untranslatable: list[str] = []
    name = path.relative_to(ROOT) if path.is_relative_to(ROOT) else path
    for node in ast.walk(tree):
        said: ast.AST | None = None
        if isinstance(node, ast.Assert):
            said = node.msg
        elif isinstance(node, ast.Raise) and isinstance(node.exc, ast.Call) and getattr(node.exc.func, "id", "") == "AssertionError":
            said = node.exc.args[0] if node.exc.args else None
        template = _why_template(node)
        if template is not None:
            found.append(Message(template, fields(template), f"{name}:{node.lineno}"))
        if said is None or _why_template(said) is not None or _passes_on(said):
            continue
        if isinstance(said, ast.Constant) and isinstance(said.value, str):
            found.append(Message(said.value, frozenset(), f"{name}:{said.lineno}"))
        else:
            untranslatable.append(f"{name}:{said.lineno}")
    return found, untranslatable


def of_lab(lab_path: Path) -> tuple[list[Message], list[str]]:
    """A lab's messages: its checks.py and the ``labkit.labs`` modules that file imports."""
    checks = lab_path / "checks.py"
    files = [checks]
    for node in ast.walk(ast.parse(checks.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module == "labkit.labs":
            files += [ROOT / "labkit" / "labs" / f"{alias.name}.py" for alias in node.names]
    messages: list[Message] = []
    untranslatable: list[str] = []
    for path in files:
        m, u = read(path)
        messages += m
        untranslatable += u
    return messages, untranslatable
