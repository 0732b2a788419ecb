"""The cluster description: load ``sandbox.yml`` (+ local override), validate, resolve.

Everything that touches the machine reads the *resolved* form produced here
(``Resolved.to_dict()``), written once per run to ``.state/resolved.json``: the
Vagrantfile, the Ansible inventory and every task.  No node, IP or version is written
anywhere else.

Bad input fails before anything is created, with one line per problem naming the
field, the bad value and the fix (``ConfigError``).  Host facts that the rules need
(the providers installed, the host's routes, the OS) are passed in as plain values
(``HostContext``), so every rule is unit-tested without touching the host.
"""

from __future__ import annotations

import difflib
import ipaddress
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from labkit.cluster.resolved import HostContext, Resolved
from labkit.cluster.rules import cross_checks, mirror_problems, path_problems
from labkit.cluster.schema import DEFAULT_BOXES, MISSING, ConfigError, Problem, SandboxConfig
from labkit.errors import KitError

# --------------------------------------------------------------------------- loading


class _UniqueKeyLoader(yaml.SafeLoader):
    """A safe loader that refuses duplicate keys (PyYAML silently keeps the last)."""


def _construct_mapping(loader: _UniqueKeyLoader, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
    seen: dict[Any, int] = {}
    for key_node, _ in node.value:
        if key_node.tag == "tag:yaml.org,2002:merge":
            continue  # `<<: *anchor`, YAML's merge key: PyYAML merges it below
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise yaml.constructor.ConstructorError(None, None, f"duplicate key {key!r} (first at line {seen[key] + 1})", key_node.start_mark)
        seen[key] = key_node.start_mark.line
    return loader.construct_mapping(node, deep)


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


MAX_CONFIG_BYTES = 1 << 20  # a cluster description is a few kilobytes
MAX_CONFIG_VALUES = 20_000  # values after YAML aliases are expanded (a "billion laughs" stops here)
MAX_CONFIG_DEPTH = 50


def _expanded_size(root: yaml.Node) -> tuple[int, int]:
    """How many values the node graph stands for once aliases are expanded, and how deep it
    nests, walking at most MAX_CONFIG_VALUES of them (so the walk itself is bounded)."""
    count, deepest, stack = 0, 0, [(root, 1)]
    while stack and count <= MAX_CONFIG_VALUES and deepest <= MAX_CONFIG_DEPTH:
        node, depth = stack.pop()
        count += 1
        deepest = max(deepest, depth)
        if isinstance(node, yaml.SequenceNode):
            stack.extend((child, depth + 1) for child in node.value)
        elif isinstance(node, yaml.MappingNode):
            stack.extend((part, depth + 1) for pair in node.value for part in pair)
    return count, deepest


def _read_problem(path: Path, what: str, fix: str) -> ConfigError:
    return ConfigError(path.name, [Problem(path.name, MISSING, what, fix)])


def read_yaml(path: Path) -> dict[str, Any]:
    """Read one YAML mapping; syntax errors name the file, line and column. Bounded in time
    and memory whatever the file holds: size, alias expansion and nesting are capped."""
    try:
        if path.is_dir():
            raise _read_problem(path, "is a folder, not a file", f"point LABKIT_CONFIG at a YAML file, not at {path}")
        with path.open("rb") as fh:
            raw = fh.read(MAX_CONFIG_BYTES + 1)
    except OSError as exc:
        raise KitError(f"cannot read {path}: {exc.strerror}. Create it (see README.md) or set LABKIT_CONFIG.") from exc
    if len(raw) > MAX_CONFIG_BYTES:
        raise _read_problem(path, f"is larger than {MAX_CONFIG_BYTES >> 10} KiB", "a cluster description is a few kilobytes: is this the right file?")
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise _read_problem(path, "is UTF-16 text", "save it as UTF-8 (most editors: File → Save with encoding → UTF-8)")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise _read_problem(path, f"is not UTF-8 text (byte {exc.start}, line {line})", "save it as UTF-8 (most editors: File → Save with encoding → UTF-8)") from None
    if "\x00" in text:
        raise _read_problem(path, "holds a NUL character: it is not a text file", "check that LABKIT_CONFIG names your YAML file")
    try:
        node = yaml.compose(text, Loader=_UniqueKeyLoader)
        if node is not None:
            count, depth = _expanded_size(node)
            if count > MAX_CONFIG_VALUES:
                raise _read_problem(path, f"stands for more than {MAX_CONFIG_VALUES} values once its YAML aliases are expanded", "write the values out, or nest fewer aliases")
            if depth > MAX_CONFIG_DEPTH:
                raise _read_problem(path, f"nests deeper than {MAX_CONFIG_DEPTH} levels", "sandbox.yml is at most four levels deep: check the indentation")
        data = yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"{path.name} line {mark.line + 1}, column {mark.column + 1}" if mark else path.name
        raise ConfigError(
            path.name,
            [Problem(where, MISSING, f"malformed YAML: {exc.problem or exc.context}", "correct the YAML syntax at that line (indent with spaces, quote values that contain ': ')")],
        ) from exc
    except RecursionError:
        raise _read_problem(path, f"nests deeper than {MAX_CONFIG_DEPTH} levels", "sandbox.yml is at most four levels deep: check the indentation") from None
    except (yaml.YAMLError, ValueError) as exc:
        raise _read_problem(path, f"cannot be read as YAML ({str(exc).splitlines()[0] if str(exc) else type(exc).__name__})", "correct the YAML syntax") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(
            path.name, [Problem(path.name, MISSING, f"the top level is a {type(data).__name__}, not a mapping", "write `key: value` pairs at the top level, as in sandbox.yml")]
        )
    # `x-…` keys hold YAML anchors for the rest of the file (as in Compose files).
    return {k: v for k, v in data.items() if not (isinstance(k, str) and k.startswith("x-"))}


def deep_merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """Merge ``override`` over ``base``: mappings merge key by key, anything else is replaced."""
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def replaced_lists(base: Mapping[str, Any], override: Mapping[str, Any], where: str = "") -> list[str]:
    """What an override's lists replace whole (lists are not merged): one line per list,
    naming the entries it drops, so a partial `nodes` list never drops nodes silently."""
    notes = []
    for key, value in override.items():
        here = f"{where}.{key}" if where else str(key)
        old = base.get(key)
        if isinstance(value, Mapping) and isinstance(old, Mapping):
            notes += replaced_lists(old, value, here)
        elif isinstance(value, list) and isinstance(old, list) and value != old:

            def label(item: Any) -> str:
                return str(item.get("name")) if isinstance(item, Mapping) and "name" in item else repr(item)

            kept = {label(i) for i in value}
            dropped = [label(i) for i in old if label(i) not in kept]
            notes.append(f"{here}: the override's {len(value)} entries replace the {len(old)} of the base" + (f" (dropped: {', '.join(dropped)})" if dropped else ""))
    return notes


def override_path(config_path: Path) -> Path:
    """``sandbox.yml`` → ``sandbox.local.yml`` beside it (git-ignored)."""
    return config_path.with_name(f"{config_path.stem}.local{config_path.suffix}")


# --------------------------------------------------------------------------- pydantic → problems


def _where(loc: Iterable[Any]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out or "(top level)"


def _known_keys(model: type[BaseModel], loc: Sequence[Any]) -> list[str]:
    current: Any = model
    for part in loc[:-1]:
        if isinstance(part, int):
            continue
        fld = current.model_fields.get(part) if isinstance(current, type) and issubclass(current, BaseModel) else None
        if fld is None:
            return []
        ann = fld.annotation
        args = getattr(ann, "__args__", ())
        current = next((a for a in (ann, *args) if isinstance(a, type) and issubclass(a, BaseModel)), None)
        if current is None:
            return []
    return list(current.model_fields) if isinstance(current, type) and issubclass(current, BaseModel) else []


def _problem_from_pydantic(err: Mapping[str, Any]) -> Problem:
    loc = tuple(err["loc"])
    where = _where(loc)
    kind = err["type"]
    value = err.get("input", MISSING)
    ctx = err.get("ctx") or {}
    if kind == "extra_forbidden":
        known = _known_keys(SandboxConfig, loc)
        close = difflib.get_close_matches(str(loc[-1]), known, n=1)
        hint = f"did you mean `{close[0]}`?" if close else f"known keys here: {', '.join(known)}"
        return Problem(where, MISSING, "unknown key", f"remove it or correct its spelling ({hint})")
    if kind == "missing":
        return Problem(where, MISSING, "required key is missing", f"add `{loc[-1]}` (see sandbox.yml for an example)")
    if kind == "literal_error":
        return Problem(where, value, "not an allowed value", f"use one of {ctx.get('expected')}")
    if kind in ("int_type", "int_parsing", "int_from_float"):
        return Problem(where, value, "must be a whole number", "write a number without quotes or units, e.g. 2048")
    if kind in ("bool_type", "bool_parsing"):
        return Problem(where, value, "must be true or false", "write true or false")
    if kind in ("string_type",):
        return Problem(where, value, "must be a string", 'quote the value, e.g. "1.36.2"')
    if kind in ("list_type",):
        return Problem(where, value, "must be a list", "write it as a YAML list, one `- name: …` entry per node")
    if kind in ("model_type", "dict_type", "model_attributes_type"):
        return Problem(where, value, "must be a mapping of keys to values", "write it as `key: value` lines indented under it")
    if kind == "too_short":
        return Problem(where, value, "must not be empty", "list at least one control-plane node")
    if kind == "greater_than_equal":
        return Problem(where, value, f"is below the minimum {ctx.get('ge')}", f"use at least {ctx.get('ge')}")
    if kind == "less_than_equal":
        return Problem(where, value, f"is above the maximum {ctx.get('le')}", f"use at most {ctx.get('le')}")
    if kind == "string_pattern_mismatch" and where.startswith("classroom."):
        return Problem(where, value, "is not what `./kit classroom.join` writes", "run `./kit classroom.join URL --token T --student NAME` again (or `./kit classroom.leave`)")
    if kind == "string_pattern_mismatch":
        return Problem(where, value, "is not a valid name", "use 1 to 32 lowercase letters, digits and '-', starting with a letter and not ending with '-' (it becomes a hostname)")
    if kind.startswith("ip_v4"):
        if isinstance(value, str) and "/" in value:
            try:
                fixed = ipaddress.IPv4Network(value, strict=False)
            except ValueError:
                fixed = None
            if fixed is not None and str(fixed) != value:
                return Problem(where, value, "has host bits set", f"use the network address {fixed}")
        return Problem(where, value, "is not a valid IPv4 address or network", "write it like 192.168.56.11 (address) or 192.168.56.0/24 (network)")
    return Problem(where, value, err.get("msg", kind), "see the comments in sandbox.yml")


def _pick_provider(requested: str, host: HostContext) -> str:
    if requested != "auto":
        return requested
    if host.system == "Linux" and "libvirt" in host.providers:
        return "libvirt"
    if "virtualbox" in host.providers:
        return "virtualbox"
    return "libvirt" if host.system == "Linux" else "virtualbox"


def validate(data: Mapping[str, Any], *, source: str, host: HostContext, root: Path, sources: Sequence[str] = ()) -> Resolved:
    """Validate merged config data and resolve it, or raise ConfigError listing every problem."""
    try:
        cfg = SandboxConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(source, [_problem_from_pydantic(e) for e in exc.errors()]) from None
    provider = _pick_provider(cfg.provider, host)
    problems, nodes = cross_checks(cfg, provider, host)
    if cfg.box.name is None and host.arch not in DEFAULT_BOXES:
        problems.append(Problem("box.name", MISSING, f"there is no default box for a {host.arch} host", f"name a Debian 13 box built for {host.arch} in box.name"))
    if cfg.box.local and host.arch != "amd64":
        problems.append(Problem("box.local", True, f"box.build makes amd64 boxes; this host is {host.arch}", "set box.local: false (the default box fits your machine)"))
    if cfg.box.local and cfg.box.name is None:
        problems.append(Problem("box.name", MISSING, "a local box needs its name in Vagrant", "set box.name: labkit/trixie (the name `./kit box.build` adds it as)"))
    if cfg.box.local and provider != "libvirt":
        problems.append(
            Problem(
                "box.local",
                True,
                f"the locally built box exists for libvirt only, and the provider is {provider}",
                "set box.local: false and use an official box such as debian/trixie64",
            )
        )
    problems += mirror_problems(cfg.cache.mirrors)
    problems += path_problems(cfg, root)
    if problems:
        raise ConfigError(source, problems)
    driver = cfg.libvirt.driver
    if driver == "auto":
        driver = "kvm" if host.has_kvm else "qemu"
    return Resolved(cfg, provider, tuple(nodes), driver, tuple(sources or (source,)), root, arch=host.arch)


# Shipped profiles (`profile: NAME`), merged over sandbox.yml and under sandbox.local.yml.
PROFILES = {"small": Path(__file__).resolve().parents[1] / "profiles/small.yml"}


def load(config_path: Path, host: HostContext) -> Resolved:
    """Read ``config_path`` and its ``.local`` override, merge, validate and resolve."""
    data = read_yaml(config_path)
    sources = [str(config_path)]
    local = override_path(config_path)
    notes: list[str] = []
    override = read_yaml(local) if local.exists() else {}
    profile = override.get("profile", data.get("profile"))
    if isinstance(profile, str) and profile in PROFILES:
        data = deep_merge(data, read_yaml(PROFILES[profile]))  # the profile under the student's own override
        sources.append(str(PROFILES[profile]))
    if local.exists():
        notes = replaced_lists(data, override)
        data = deep_merge(data, override)
        sources.append(str(local))
    source = " + ".join(Path(s).name for s in sources)
    resolved = validate(data, source=source, host=host, root=config_path.resolve().parent, sources=sources)
    if resolved.config.layers.kubernetes and not resolved.workers:
        notes.append(f"{resolved.control_plane.name} is the only node: its NoSchedule taint is left off, so the layers' workloads run on the control plane")
    resolved.extra["notes"] = notes
    return resolved
