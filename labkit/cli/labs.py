"""The labs' tasks: parse flags, call one function of ``labkit.labs.actions``, print."""

from __future__ import annotations

import time

from invoke import Context, Exit, task
from rich.table import Table

from labkit.cli.common import console, friendly, kit, say
from labkit.labs import actions, discovery, ladder
from labkit.labs import progress as labs_progress
from labkit.labs.words import ACTIONS_ZH, WORDS, pad, say_in
from labkit.paths import ROOT

# ---------------------------------------------------------------------- labs


def _lab(lab_id: str):  # type: ignore[no-untyped-def]

    return discovery.find(discovery.discover(), lab_id)


@task(name="list", help={"lang": "Language: en or zh (default: from LANG)."})
@friendly
def lab_list(c: Context, lang: str | None = None) -> None:
    """List the labs: layer, minutes, whether their layers are installed, and your progress."""
    language = discovery.language(lang)
    k = kit()
    resolved = k.resolve()
    enabled = resolved.enabled_layers()
    addons = [name for name, on in resolved.config.addons.model_dump().items() if on]
    progress = labs_progress.Progress(k.progress_path)
    table = Table(*WORDS[language]["columns"].split("|"))
    for lab in discovery.discover():
        missing = lab.missing_layers(enabled)
        state = say_in(language, "needs_layers", layers=", ".join(missing)) if missing else progress.status(lab, language)
        lacking = lab.steps_lacking(addons, language)
        if lacking and not missing:
            state += say_in(language, "without", steps=", ".join(lacking))
        table.add_row(lab.id, lab.title(language), lab.spec.layer, str(lab.spec.minutes), state)
    console.print(table)
    if resolved.config.profile != "default":
        guest = sum(n.memory for n in resolved.nodes)
        say(say_in(language, "profile", profile=resolved.config.profile, nodes=len(resolved.nodes), guest=guest))


@task(name="start", help={"lab": "Lab number, e.g. 01.", "lang": "Language: en or zh (default: from LANG)."})
@friendly
def lab_start(c: Context, lab: str, lang: str | None = None) -> None:
    """Start LAB: take its starting snapshot (first time) or restore it, and show where the guide is."""
    language = discovery.language(lang)
    the_lab = _lab(lab)
    action = actions.start(kit(), the_lab)
    say(say_in(language, "started", id=the_lab.id, title=the_lab.title(language), action=action if language == "en" else ACTIONS_ZH.get(action, action)))
    needs = ", ".join(dict.fromkeys([*the_lab.spec.needs, the_lab.spec.layer]))
    say(say_in(language, "about", minutes=the_lab.spec.minutes, needs=needs, steps=len(the_lab.spec.steps)))
    guide = the_lab.guide(language) if the_lab.guide(language).exists() else the_lab.guide()
    say(f"  {WORDS[language]['guide']}: {guide.relative_to(ROOT)} (site: `./kit docs.serve`)   then: ./kit lab.check {the_lab.id}")


@task(name="check", help={"lab": "Lab number, e.g. 01.", "lang": "Language: en or zh (default: from LANG).", "timing": "Also print each check's seconds, slowest first."})
@friendly
def lab_check(c: Context, lab: str, lang: str | None = None, timing: bool = False) -> None:
    """Check LAB: ✓/✗ per check with a hint for each failure; non-zero exit when any fails."""
    start = time.monotonic()
    language = discovery.language(lang)
    words = WORDS[language]
    the_lab, k = _lab(lab), kit()
    hints = the_lab.hints(language)
    steps = {cid: n for n, step in enumerate(the_lab.spec.steps, 1) for cid in step.checks}
    results, problems = actions.check(k, the_lab, language)
    for r in results:
        title = r.step if language == "en" else words["step"].format(n=steps.get(r.id, "?"))
        if r.ok:
            say(f"  ✓ {r.id:<22} {title}")
        else:
            say(f"  ✗ {r.id:<22} {title}\n      {the_lab.detail(r.detail, language)}\n      {words['hint']}: {hints.get(r.id, r.hint)}")
    for problem in problems:
        say(f"  ! {problem}")
    failed = [r for r in results if not r.ok]
    say(words["pass"].format(ok=len(results) - len(failed), total=len(results), secs=time.monotonic() - start))
    if timing:  # side by side on the nodes: each check's own time, the slowest sets the pace
        for r in sorted(results, key=lambda r: -r.seconds):
            say(f"    {r.seconds:5.2f} s  {r.id}")
    shared = actions.share(k, the_lab, results)
    if shared:
        say(f"  {shared}")
    if failed:
        raise Exit(code=1)


@task(name="solve", help={"lab": "Lab number, e.g. 01.", "lang": "Language: en or zh (default: from LANG)."})
@friendly
def lab_solve(c: Context, lab: str, lang: str | None = None) -> None:
    """Do LAB's remaining steps with the guide's own commands (README.md), each held to its checks."""
    language = discovery.language(lang)
    the_lab = _lab(lab)
    runs = actions.solve(kit(), the_lab)
    say(say_in(language, "solved", id=the_lab.id, ran=sum(r.ran for r in runs), done=sum(not r.ran for r in runs)))


@task(name="walk", help={"lab": "Lab number, e.g. 01.", "lang": "Language: en or zh (default: from LANG)."})
@friendly
def lab_walk(c: Context, lab: str, lang: str | None = None) -> None:
    """Test LAB's guide on a just-started lab: run each step's commands as written; every check must fail before its step and pass after it."""
    language = discovery.language(lang)
    the_lab = _lab(lab)
    runs = actions.solve(kit(), the_lab, strict=True)
    for r in runs:
        say(say_in(language, "walk_step", n=r.number, secs=r.seconds, title=r.title))
    say(say_in(language, "walked", id=the_lab.id, steps=len(runs)))


@task(name="reset", help={"lab": "Lab number, e.g. 01.", "lang": "Language: en or zh (default: from LANG)."})
@friendly
def lab_reset(c: Context, lab: str, lang: str | None = None) -> None:
    """Put every node back to LAB's starting snapshot (your own snapshots of this lab are dropped)."""
    language = discovery.language(lang)
    the_lab = _lab(lab)
    actions.reset(kit(), the_lab)
    say(say_in(language, "reset", id=the_lab.id))


@task(name="status", help={"json": "Print the progress as JSON (for an instructor).", "lang": "Language: en or zh (default: from LANG)."})
@friendly
def lab_status(c: Context, json: bool = False, lang: str | None = None) -> None:
    """Your progress through the labs (kept in .state/labs-progress.json)."""
    import json as json_mod

    k = kit()
    progress = labs_progress.Progress(k.progress_path)
    if json:
        print(json_mod.dumps({"cluster": k.resolve().config.name, "labs": progress.data}, indent=2, sort_keys=True))
        return
    language = discovery.language(lang)
    for lab in discovery.discover():
        say(f"  {lab.id}  {pad(progress.status(lab, language), 28)} {lab.title(language)}")


@task(name="snapshot", help={"lab": "Lab number, e.g. 01.", "name": "Your name for the snapshot.", "lang": "Language: en or zh (default: from LANG)."})
@friendly
def lab_snapshot(c: Context, lab: str, name: str, lang: str | None = None) -> None:
    """Take a snapshot of the lab's nodes from the host, named labNN-NAME (dropped by lab.reset)."""
    the_lab = _lab(lab)
    snap = actions.snapshot(kit(), the_lab, name)
    say(say_in(discovery.language(lang), "snapshot_taken", snap=snap, id=the_lab.id, name=name))


@task(name="restore", help={"lab": "Lab number, e.g. 01.", "name": "The name given to lab.snapshot.", "lang": "Language: en or zh (default: from LANG)."})
@friendly
def lab_restore(c: Context, lab: str, name: str, lang: str | None = None) -> None:
    """Put the lab's nodes back to your snapshot labNN-NAME (taken with lab.snapshot)."""
    the_lab = _lab(lab)
    snap = actions.snapshot(kit(), the_lab, name, restore=True)
    say(say_in(discovery.language(lang), "restored", snap=snap))


@task(name="ladder", help={"lang": "Language: en or zh (default: from LANG)."})
@friendly
def lab_ladder(c: Context, lang: str | None = None) -> None:
    """Lab 06: read the measurements from the control plane (~/lab06/ladder.txt), print the table, draw .state/ladder.png."""
    language = discovery.language(lang)
    rungs, data, png = actions.ladder(kit())
    say(ladder.table(rungs, language))
    say(say_in(language, "wrote", data=data, png=png))
