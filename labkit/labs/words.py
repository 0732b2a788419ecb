"""The lab commands' own words in each language the guides are written in (`--lang`, else
LANG: ``discovery.language``). The English ones are the kit's usual output; the checks'
hints are the labs' own (``Lab.hints``)."""

from __future__ import annotations

WORDS: dict[str, dict[str, str]] = {
    "en": {
        "hint": "hint",
        "pass": "{ok}/{total} checks pass ({secs:.1f} s)",
        "step": "step {n}",
        "guide": "guide",
        "started": "✓ lab {id} ({title}): starting snapshot {action}",
        "about": "  about {minutes} minutes; it builds on: {needs}; {steps} steps",
        "solved": "✓ lab {id} solved: {ran} step(s) done by the guide's commands, {done} done already",
        "reset": "✓ lab {id} is back at its start",
        "columns": "lab|title|layer|min|status",
        "needs_layers": "needs layers: {layers}",
        "without": "; without {steps}",
        "profile": "profile {profile}: {nodes} node(s), {guest} MiB of guest RAM (labkit/profiles/{profile}.yml)",
        "not_started": "not started",
        "passed": "passed",
        "passed_solved": "passed, after lab.solve",
        "in_progress": "in progress ({done}/{total} checks)",
        "started_only": "started",
        "lacking_step": "step {n} (addons.{addon})",
    },
    "zh": {
        "hint": "提示",
        "pass": "{ok}/{total} 项检查通过（{secs:.1f} 秒）",
        "step": "第 {n} 步",
        "guide": "指南",
        "started": "✓ 实验 {id}（{title}）：起始快照已{action}",
        "about": "  大约 {minutes} 分钟；它建立在这些层之上：{needs}；共 {steps} 步",
        "solved": "✓ 实验 {id} 已完成：{ran} 步由指南中的命令完成，{done} 步此前已完成",
        "reset": "✓ 实验 {id} 已回到起点",
        "columns": "实验|标题|层|分钟|状态",
        "needs_layers": "需要这些层：{layers}",
        "without": "；缺少 {steps}",
        "profile": "配置档 {profile}：{nodes} 个节点，虚拟机内存共 {guest} MiB（labkit/profiles/{profile}.yml）",
        "not_started": "未开始",
        "passed": "已通过",
        "passed_solved": "已通过（由 lab.solve 完成）",
        "in_progress": "进行中（{done}/{total} 项检查）",
        "started_only": "已开始",
        "lacking_step": "第 {n} 步（addons.{addon}）",
    },
}
# What `lab.start` did to the starting snapshot, in Chinese.
ACTIONS_ZH = {"taken": "创建", "restored": "恢复"}


def say_in(language: str, key: str, **values: object) -> str:
    return WORDS[language][key].format(**values)
