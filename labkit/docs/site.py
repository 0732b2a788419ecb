"""The guide site (`./kit docs`): a static site in English and Chinese, generated from the
files the kit already has, so nothing in the guides is written twice.

- The labs: each lab's guide (``labs/NN-*/README.md`` and ``README.zh.md``), followed by
  its checks and their hints, read from ``lab.yml``, ``checks.py`` and ``hints.zh.yml``;
  lab 06 shows the ladder chart when `./kit lab.ladder` has drawn it.
- The user pages: the README's user sections (``USER_PAGES``), cut at their headings, and
  their Chinese versions in ``labkit/docs/zh/``.

MkDocs builds it with the Material theme (search, copy buttons on code) and
mkdocs-static-i18n (the language switcher), in strict mode: a broken link or a missing
page fails the build. The generated sources and the site go to the state folder.
"""

from __future__ import annotations

import contextlib
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import yaml

from labkit.errors import KitError
from labkit.labs.discovery import Lab, discover
from labkit.paths import ROOT

ZH = Path(__file__).parent / "zh"
# Each user page: its file, and the README's H2 sections it is cut from (None: the part
# before the first H2, the kit's introduction).
USER_PAGES: dict[str, tuple[str | None, ...]] = {
    "index": (None, "The two commands"),
    "host-requirements": ("Host requirements",),
    "labs": ("The labs",),
    "workshop": ("Running a workshop",),
    "offline": ("Going offline: the artifact cache",),
}
TITLES = {
    "en": {"index": "Home", "host-requirements": "Host requirements", "labs": "The labs", "workshop": "Running a workshop", "offline": "Going offline"},
    "zh": {"index": "首页", "host-requirements": "主机要求", "labs": "实验", "workshop": "组织一场工作坊", "offline": "离线使用"},
}
CHECKS = {
    "en": ("## Checks", "`./kit lab.check {id}` runs these checks; each one failing shows its hint.", "step", "check", "hint"),
    "zh": ("## 检查项", "`./kit lab.check {id}` 会运行这些检查；未通过的检查会显示提示。", "步骤", "检查", "提示"),
}
LINK = re.compile(r"(!?\[[^\]]*\])\(([^)\s#]+)(#[^)]*)?\)")


@dataclass(frozen=True)
class Site:
    source: Path  # the generated Markdown and mkdocs.yml
    out: Path  # the built site


def readme_sections(text: str) -> dict[str | None, str]:
    """The README cut at its H2 headings: heading → the section's text (heading included);
    None → what comes before the first one."""
    sections: dict[str | None, list[str]] = {None: []}
    current: str | None = None
    fence = False
    for line in text.splitlines(keepends=True):
        if line.lstrip().startswith("```"):
            fence = not fence
        if not fence and line.startswith("## "):
            current = line[3:].strip()
            sections[current] = []
        sections[current].append(line)
    return {k: "".join(v) for k, v in sections.items()}


def english_page(name: str, sections: dict[str | None, str]) -> str:
    parts = []
    for heading in USER_PAGES[name]:
        if heading not in sections:
            raise KitError(f"README.md has no section `## {heading}`, which the guide site's page {name} is made of")
        text = sections[heading]
        if name != "index" and heading is not None:
            text = "# " + text[3:]  # a section page's own title
        parts.append(text)
    return "\n".join(p.rstrip("\n") + "\n" for p in parts)


def _rewrite_links(text: str, origin: Path, assets: Path, pages: dict[Path, str], prefix: str = "") -> str:
    """Relative links from ``origin`` (a file of the repository) as the page at depth
    ``prefix`` needs them: a lab's guide becomes its page, any other file of the repository
    is copied into the site's assets."""

    def one(m: re.Match[str]) -> str:
        label, target, anchor = m.group(1), m.group(2), m.group(3) or ""
        if "://" in target or target.startswith(("mailto:", "/")):
            return m.group(0)
        path = (origin.parent / target).resolve()
        if path in pages:
            return f"{label}({prefix}{pages[path]}{anchor})"
        if path.is_file() and path.is_relative_to(ROOT):
            assets.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, assets / path.name)
            return f"{label}({prefix}assets/{path.name}{anchor})"
        return m.group(0)

    return LINK.sub(one, text)


def checks_section(lab: Lab, lang: str) -> str:
    heading, intro, step_h, check_h, hint_h = CHECKS[lang]
    hints = lab.hints(lang)
    rows = [f"| {step_h} | {check_h} | {hint_h} |", "|---|---|---|"]
    for n, step in enumerate(lab.spec.steps, 1):
        for cid in step.checks:
            rows.append(f"| {n} | `{cid}` | {hints[cid].replace('|', '&#124;')} |")
    return f"\n{heading}\n\n{intro.format(id=lab.id)}\n\n" + "\n".join(rows) + "\n"


def lab_page(lab: Lab, lang: str, assets: Path, pages: dict[Path, str], chart: Path | None) -> str:
    guide = lab.guide(lang)
    if not guide.exists():
        shown = guide.relative_to(ROOT) if guide.is_relative_to(ROOT) else guide
        raise KitError(f"lab {lab.id} has no guide in {lang}: {shown} is missing")
    text = _rewrite_links(guide.read_text(encoding="utf-8"), guide, assets, pages, "../")
    if chart is not None:
        assets.mkdir(parents=True, exist_ok=True)
        shutil.copy2(chart, assets / "ladder.png")
        caption = "The ladder measured on your cluster (`./kit lab.ladder`)" if lang == "en" else "在你的集群上测得的阶梯（`./kit lab.ladder`）"
        text = text.rstrip("\n") + f"\n\n![{caption}](../assets/ladder.png)\n"
    return text.rstrip("\n") + "\n" + checks_section(lab, lang)


def generate(state_dir: Path) -> Site:
    """Write the site's sources (Markdown in both languages and mkdocs.yml) from the repository."""
    source = state_dir / "docs-src"
    shutil.rmtree(source, ignore_errors=True)
    docs = source / "docs"
    assets = docs / "assets"
    (docs / "labs").mkdir(parents=True)
    labs = discover()
    pages = {lab.guide().resolve(): f"labs/{lab.path.name}.md" for lab in labs}
    readme = ROOT / "README.md"
    sections = readme_sections(readme.read_text(encoding="utf-8"))
    for name in USER_PAGES:
        english = english_page(name, sections)
        chinese = ZH / f"{name}.md"
        if not chinese.exists():
            raise KitError(f"the guide site's page {name} has no Chinese version: {chinese.relative_to(ROOT)} is missing")
        (docs / f"{name}.md").write_text(_rewrite_links(english, readme, assets, pages), encoding="utf-8")
        (docs / f"{name}.zh.md").write_text(_rewrite_links(chinese.read_text(encoding="utf-8"), readme, assets, pages), encoding="utf-8")
    chart = state_dir / "ladder.png"
    for lab in labs:
        for lang, suffix in (("en", ""), ("zh", ".zh")):
            page = lab_page(lab, lang, assets, pages, chart if lab.id == "06" and chart.exists() else None)
            (docs / "labs" / f"{lab.path.name}{suffix}.md").write_text(page, encoding="utf-8")
    page = {name: {TITLES["en"][name]: f"{name}.md"} for name in USER_PAGES}
    guides = {"Labs": [{f"{lab.id} {lab.spec.title}": f"labs/{lab.path.name}.md"} for lab in labs]}
    nav_items: list[object] = [page["index"], page["host-requirements"], page["labs"], guides, page["workshop"], page["offline"]]
    config = {
        "site_name": "labkit — the virtualization ladder",
        "docs_dir": "docs",
        "strict": True,
        "use_directory_urls": False,
        # No web fonts (`font: false`): the site works offline and asks nothing of the internet.
        "theme": {"name": "material", "font": False, "features": ["content.code.copy", "navigation.sections", "search.highlight"], "language": "en"},
        "markdown_extensions": ["admonition", "tables", "attr_list", {"pymdownx.highlight": {"anchor_linenums": False}}, "pymdownx.superfences", {"toc": {"permalink": True}}],
        "plugins": [
            "search",
            {
                "i18n": {
                    "docs_structure": "suffix",
                    "reconfigure_material": True,
                    "languages": [
                        {"locale": "en", "name": "English", "default": True, "build": True},
                        {"locale": "zh", "name": "中文", "build": True, "nav_translations": {**{TITLES["en"][k]: TITLES["zh"][k] for k in TITLES["en"]}, "Labs": "实验指南"}},
                    ],
                }
            },
        ],
        "nav": nav_items,
    }
    (source / "mkdocs.yml").write_text(yaml.safe_dump(config, sort_keys=False, allow_unicode=True))
    return Site(source, state_dir / "site")


def serving(site: Site, host: str, port: int) -> contextlib.AbstractContextManager[str]:
    """Serve the built site from a background thread (`docs.serve`, the browser test)."""
    from aiohttp import web

    from labkit.cache import serve

    async def home(_request: web.Request) -> web.StreamResponse:
        raise web.HTTPFound("/index.html")

    application = web.Application()
    application.router.add_get("/", home)
    application.router.add_static("/", site.out)
    return serve.serving(site.out, host, port, application=application, what="the guide site", is_cache=False)


def build(state_dir: Path) -> Site:
    """Generate and build the site (strict: a broken link or a missing page fails)."""
    site = generate(state_dir)
    proc = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--clean", "-f", str(site.source / "mkdocs.yml"), "-d", str(site.out)],
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        problems = [line for line in (proc.stderr + proc.stdout).splitlines() if "WARNING" in line or "ERROR" in line] or (proc.stderr + proc.stdout).splitlines()[-15:]
        raise KitError("the guide site did not build (strict mode):\n" + "\n".join(f"  {p}" for p in problems))
    return site
