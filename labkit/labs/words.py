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
        "walk_step": "  step {n}  {secs:6.1f} s  {title}",
        "walked": "✓ lab {id}: the guide's {steps} steps ran as written, each check failed before its step and passed after it",
        "snapshot_taken": "✓ snapshot {snap} taken; go back to it with `./kit lab.restore {id} {name}`",
        "restored": "✓ the lab's nodes are back at {snap}",
        "ladder_columns": "rung|start-up|memory|samples",
        "ladder_medians": "medians of the samples; the VM booted once",
        "ladder_mesh": "the mesh's cost per pod (Istio's sidecar): {start:+.3f} s to start, {memory:+.1f} MiB of memory",
        "wrote": "wrote {data} and {png}",
        "cannot_pull": "pod {pod} cannot pull {image} ({reason}). `./kit lab.start {id}` puts the lab's images on every node;"
        " if this image is not one of them (lab.yml `images`), run `./kit cache.serve` on the host while the pod pulls",
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
        "walk_step": "  第 {n} 步  {secs:6.1f} 秒  {title}",
        "walked": "✓ 实验 {id}：指南的 {steps} 步均按原样运行，每项检查在其步骤之前失败、之后通过",
        "snapshot_taken": "✓ 快照 {snap} 已创建；用 `./kit lab.restore {id} {name}` 回到它",
        "restored": "✓ 实验的节点已回到 {snap}",
        "ladder_columns": "层级|启动时间|内存|样本数",
        "ladder_medians": "各样本的中位数；虚拟机只启动了一次",
        "ladder_mesh": "服务网格每个 Pod 的开销（Istio 的 sidecar）：启动多 {start:+.3f} 秒，内存多 {memory:+.1f} MiB",
        "wrote": "已写入 {data} 和 {png}",
        "cannot_pull": "Pod {pod} 无法拉取 {image}（{reason}）。`./kit lab.start {id}` 会把实验的镜像放到每个节点上；"
        "如果这个镜像不在其中（lab.yml 的 `images`），请在 Pod 拉取镜像时在主机上运行 `./kit cache.serve`",
    },
}
# What `lab.start` did to the starting snapshot, in Chinese.
ACTIONS_ZH = {"taken": "创建", "restored": "恢复"}
# Lab 06's rungs (``ladder.RUNGS``' labels), in Chinese.
RUNGS_ZH = {"vm": "虚拟机（启动）", "container": "容器（ctr）", "pod": "Pod（Kubernetes）", "mesh": "Pod + sidecar（Istio）", "function": "函数（冷启动）"}


def say_in(language: str, key: str, **values: object) -> str:
    return WORDS[language][key].format(**values)


def pad(text: str, width: int, right: bool = False) -> str:
    """``text`` padded to ``width`` terminal cells (a Chinese character takes two)."""
    from rich.cells import cell_len

    gap = " " * max(0, width - cell_len(text))
    return gap + text if right else text + gap
