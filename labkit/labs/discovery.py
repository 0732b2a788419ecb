"""The labs: discovery and validation of ``labs/NN-slug/`` (``lab.yml``, ``checks.py``).

A lab is a folder with ``lab.yml`` (id, title, layer, needs, minutes, the images its
steps run, steps and the check ids of each), ``README.md`` (the guide, whose ``sh``
blocks are the steps' commands: ``labkit.labs.guide``) and ``checks.py`` (small named
checks registered with ``@check(id, hint)``).  Nothing here is specific to any lab.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from labkit.errors import KitError
from labkit.paths import LABS

LABS_DIR = LABS
Layer = Literal["vm", "containers", "kubernetes", "istio", "knative"]
# The config layer each lab layer needs installed (vm and containers: the node layers).
LAYER_SWITCH = {"kubernetes": "kubernetes", "istio": "istio", "knative": "knative"}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Step(_Strict):
    title: str
    checks: list[str]
    needs_addon: str | None = None  # a sandbox.yml `addons` switch this step needs on


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

    def title(self, lang: str = "en") -> str:
        """The lab's title: lab.yml's, or in another language its guide's (the H1 after
        its dash: `# 实验 02 — 从零开始构建容器`)."""
        if lang != "en" and self.guide(lang).exists():
            first = self.guide(lang).read_text(encoding="utf-8").split("\n", 1)[0]
            if first.startswith("# ") and "—" in first:
                return first.split("—", 1)[1].strip()
        return self.spec.title

    def guide(self, lang: str = "en") -> Path:
        """The lab's guide in ``lang`` (`README.md`, `README.zh.md`)."""
        return self.path / ("README.md" if lang == "en" else f"README.{lang}.md")

    def _translations(self, kind: str, lang: str) -> dict[str, str]:
        """The lab's `<kind>.<lang>.yml` (hints, details), empty when there is none."""
        path = self.path / f"{kind}.{lang}.yml"
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8")) if path.exists() else {}
        except (OSError, yaml.YAMLError) as exc:
            raise KitError(f"cannot read {path}: {exc}") from None
        if isinstance(data, list):  # details: a list of {en: ..., <lang>: ...} (long lines fold)
            return {str(pair["en"]): str(pair[lang]) for pair in data if isinstance(pair, dict) and pair.get("en") and pair.get(lang)}
        return {str(k): str(v) for k, v in data.items() if v} if isinstance(data, dict) else {}

    def hints(self, lang: str = "en") -> dict[str, str]:
        """Each check's hint in ``lang``: checks.py's own, or the lab's `hints.<lang>.yml`."""
        english = {c.id: c.hint for c in self.checks.values()}
        if lang == "en":
            return english
        translated = self._translations("hints", lang)
        return {cid: translated.get(cid, hint) for cid, hint in english.items()}

    def detail(self, message: str, lang: str = "en") -> str:
        """A failed check's message in ``lang``: the lab's `details.<lang>.yml` lists each
        English message (a ``why`` template, or a plain assert's text) with its translation;
        one it lacks is said in English."""
        if lang == "en":
            return str(message)
        template = message.template if isinstance(message, Why) else str(message)
        said = self._translations("details", lang).get(template)
        if said is None:
            return str(message)
        return said.format(**message.values) if isinstance(message, Why) else said

    def steps_lacking(self, addons: Iterable[str], language: str = "en") -> list[str]:
        """The steps that need an add-on which is off, as `step N (addons.X)`."""
        from labkit.labs.words import say_in

        on = set(addons)
        return [say_in(language, "lacking_step", n=n, addon=s.needs_addon) for n, s in enumerate(self.spec.steps, 1) if s.needs_addon and s.needs_addon not in on]

    def missing_layers(self, enabled: Iterable[str]) -> list[str]:
        on = set(enabled)
        return [LAYER_SWITCH[n] for n in [self.spec.layer, *self.spec.needs] if n in LAYER_SWITCH and LAYER_SWITCH[n] not in on]


# ---------------------------------------------------------------------- check registry


class Why(str):
    """A check's failure message: the English text, keeping its template and values so that
    ``Lab.detail`` can say it in the guide's language (as gettext keys a catalog by the
    English message): ``assert ok, why("{n} of {want} replicas are available", n=n, want=w)``.
    A test holds every message of the checks to a translation with the same fields."""

    template: str
    values: dict[str, Any]

    def __new__(cls, template: str, /, **values: Any) -> Why:
        self = super().__new__(cls, template.format(**values))
        self.template, self.values = template, values
        return self


def why(template: str, /, **values: Any) -> Why:
    return Why(template, **values)


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


LANGUAGES = ("en", "zh")


def language(given: str | None = None) -> str:
    """The language of the labs' messages: ``given`` (`--lang`), else the locale's
    (`LANG`/`LC_ALL` zh_* is Chinese), else English."""
    import os

    wanted = (given or os.environ.get("LC_ALL") or os.environ.get("LANG") or "en").lower()
    code = wanted.split("_")[0].split(".")[0].split("-")[0]
    if given and code not in LANGUAGES:
        raise KitError(f"--lang {given!r}: the labs are written in {', '.join(LANGUAGES)}")
    return code if code in LANGUAGES else "en"


def find(labs: list[Lab], lab_id: str) -> Lab:
    wanted = lab_id.zfill(2)
    for lab in labs:
        if lab.id == wanted:
            return lab
    raise KitError(f"no lab {lab_id!r}; the labs are: {', '.join(f'{lab.id} ({lab.spec.title})' for lab in labs)}")
