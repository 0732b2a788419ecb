"""Every guide in English and Chinese, the same in what a machine reads: the same steps
with the same commands (lab.walk runs either), the same checks with a hint each, and the
same user pages of the site."""

from __future__ import annotations

from pathlib import Path

import pytest
from markdown_it import MarkdownIt

from labkit.docs import site
from labkit.errors import KitError
from labkit.labs import guide
from labkit.labs.discovery import Lab, discover, language
from labkit.paths import ROOT

LABS = discover()


def fences(path: Path) -> list[tuple[str, str]]:
    return [(t.info, t.content) for t in MarkdownIt("commonmark").parse(path.read_text(encoding="utf-8")) if t.type == "fence"]


@pytest.mark.parametrize("lab", LABS, ids=lambda lab: lab.id)
def test_each_guide_exists_in_both_languages_with_the_same_steps_and_commands(lab: Lab) -> None:
    english, chinese = lab.guide("en"), lab.guide("zh")
    assert chinese.exists(), f"{chinese.relative_to(ROOT)} is missing: every guide is written in English and Chinese"
    en_steps, zh_steps = guide.parse(english), guide.parse(chinese)
    assert len(zh_steps) == len(en_steps) == len(lab.spec.steps)
    assert [[b.script for b in s.blocks] for s in zh_steps] == [[b.script for b in s.blocks] for s in en_steps]
    assert fences(chinese) == fences(english)  # the output shown too


@pytest.mark.parametrize("lab", LABS, ids=lambda lab: lab.id)
def test_each_check_has_a_chinese_hint_and_no_other_is_there(lab: Lab) -> None:
    import yaml

    translated = yaml.safe_load((lab.path / "hints.zh.yml").read_text(encoding="utf-8"))
    assert set(translated) == set(lab.checks), f"{lab.path.name}/hints.zh.yml and checks.py name different checks"
    hints = lab.hints("zh")
    assert all(hints[cid] != lab.checks[cid].hint for cid in lab.checks)  # each one translated
    assert lab.hints("en") == {cid: c.hint for cid, c in lab.checks.items()}


@pytest.mark.parametrize("page", list(site.USER_PAGES))
def test_each_user_page_exists_in_chinese_with_the_same_commands(page: str) -> None:
    sections = site.readme_sections((ROOT / "README.md").read_text(encoding="utf-8"))
    english = site.english_page(page, sections)
    chinese = site.ZH / f"{page}.md"
    assert chinese.exists(), f"{chinese.relative_to(ROOT)} is missing"
    en = [(t.info, t.content) for t in MarkdownIt("commonmark").parse(english) if t.type == "fence"]
    assert fences(chinese) == en


def test_a_missing_translation_is_caught(tmp_path: Path) -> None:
    lab = LABS[0]
    copy = Lab(lab.spec, tmp_path, lab.checks)
    (tmp_path / "README.md").write_text(lab.guide().read_text())
    with pytest.raises(KitError, match="no guide in zh"):
        site.lab_page(copy, "zh", tmp_path / "assets", {}, None)
    (tmp_path / "README.zh.md").write_text(lab.guide().read_text().replace("## Steps", "## 步骤").replace("```sh\n", "```sh\necho drift\n", 1))
    assert [b.script for s in guide.parse(tmp_path / "README.zh.md") for b in s.blocks] != [b.script for s in guide.parse(lab.guide()) for b in s.blocks]


LOCALES = [(None, "zh_CN.UTF-8", "zh"), (None, "en_US.UTF-8", "en"), (None, "C", "en"), ("zh", "en_US.UTF-8", "zh"), ("en", "zh_TW", "en")]


@pytest.mark.parametrize(("given", "env", "expected"), LOCALES)
def test_the_language_follows_lang_or_the_flag(monkeypatch: pytest.MonkeyPatch, given: str | None, env: str, expected: str) -> None:
    monkeypatch.delenv("LC_ALL", raising=False)
    monkeypatch.setenv("LANG", env)
    assert language(given) == expected


def test_an_unknown_language_flag_is_refused() -> None:
    with pytest.raises(KitError, match="en, zh"):
        language("fr")


def test_the_lab_commands_say_the_same_things_in_both_languages() -> None:
    import string

    from labkit.labs.words import WORDS

    assert set(WORDS["zh"]) == set(WORDS["en"])
    for key, english in WORDS["en"].items():
        fields = {f for _, f, _, _ in string.Formatter().parse(english) if f}
        assert {f for _, f, _, _ in string.Formatter().parse(WORDS["zh"][key]) if f} == fields, key
    assert WORDS["zh"]["columns"].count("|") == WORDS["en"]["columns"].count("|")


@pytest.mark.parametrize("lab", LABS, ids=lambda lab: lab.id)
def test_each_lab_has_a_title_in_both_languages(lab: Lab) -> None:
    assert lab.title("en") == lab.spec.title
    assert lab.title("zh") != lab.spec.title or (lab.spec.title.isascii() and lab.title("zh") in lab.guide("zh").read_text(encoding="utf-8"))


@pytest.mark.parametrize("lab", LABS, ids=lambda lab: lab.id)
def test_each_failure_message_of_the_checks_is_said_in_chinese_with_the_same_fields(lab: Lab) -> None:
    import yaml

    from labkit.labs import messages

    said, untranslatable = messages.of_lab(lab.path)
    assert not untranslatable, f"a message that is an f-string or expression cannot be translated (use why()): {untranslatable}"
    pairs = yaml.safe_load((lab.path / "details.zh.yml").read_text(encoding="utf-8"))
    translated = {pair["en"]: pair["zh"] for pair in pairs}
    assert len(translated) == len(pairs), "a message is listed twice"
    english = {m.text: m for m in said}
    assert not sorted(set(english) - set(translated)), f"{lab.path.name}/details.zh.yml lacks these messages"
    assert not sorted(set(translated) - set(english)), f"{lab.path.name}/details.zh.yml has messages no check says"
    for text, message in english.items():
        chinese = translated[text]
        assert chinese != text and any("\u4e00" <= ch <= "\u9fff" for ch in chinese), f"not translated: {text!r} ({message.where})"
        assert messages.fields(chinese) == message.fields, f"{message.where}: the fields of {text!r} differ in Chinese"


def test_an_f_string_message_is_found_and_a_why_is_said_in_the_language(tmp_path: Path) -> None:
    from labkit.labs import messages
    from labkit.labs.discovery import why

    (tmp_path / "checks.py").write_text('def c(n):\n    assert n, f"{n} pods"\n    assert n, why("{n} pods", n=n)\n    assert n, "no pods"\n')
    said, untranslatable = messages.read(tmp_path / "checks.py")
    assert {(m.text, m.fields) for m in said} == {("{n} pods", frozenset({"n"})), ("no pods", frozenset())}
    assert untranslatable == [f"{tmp_path / 'checks.py'}:2"]
    lab = Lab(LABS[0].spec, tmp_path, {})
    (tmp_path / "details.zh.yml").write_text("- en: '{n} pods'\n  zh: '{n} 个 Pod'\n- en: no pods\n  zh: 没有 Pod\n", encoding="utf-8")
    message = why("{n} pods", n=3)
    assert message == "3 pods" and lab.detail(message, "en") == "3 pods"
    assert lab.detail(message, "zh") == "3 个 Pod" and lab.detail("no pods", "zh") == "没有 Pod"
    assert lab.detail("not in the catalog", "zh") == "not in the catalog"
