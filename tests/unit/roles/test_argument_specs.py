"""Each role's argument spec says what its defaults say: an option with a plain default
declares that same default (so `ansible-doc` and the role's validation tell the truth),
an option whose default is read from the kit (a template) is required, and every default
is declared. Host variables from the inventory (`node_ip`) are the only options without a
default."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from labkit import contract
from labkit.paths import ROLES

HOST_VARS = {"node_ip"}  # set per host by the inventory (labkit.cluster.inventory)


def specs() -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for path in sorted(ROLES.glob("*/meta/argument_specs.yml")):
        entry_points = yaml.safe_load(path.read_text())["argument_specs"]
        out[path.parent.parent.name] = {name: opt for ep in entry_points.values() for name, opt in (ep.get("options") or {}).items()}
    return out


def templated(value: Any) -> bool:
    return "{{" in yaml.safe_dump(value)


def mismatches(role: str, options: dict[str, Any], defaults: dict[str, Any]) -> list[str]:
    wrong = []
    for name, opt in options.items():
        if name not in defaults:
            if name not in HOST_VARS:
                wrong.append(f"{name}: declared, but defaults/main.yml has no default")
            elif not opt.get("required"):
                wrong.append(f"{name}: a host variable, so required")
        elif templated(defaults[name]):
            if "default" in opt or not opt.get("required"):
                wrong.append(f"{name}: its default is read from the kit, so the spec marks it required, without a default of its own")
        elif opt.get("default", "<none>") != defaults[name]:
            wrong.append(f"{name}: the spec's default {opt.get('default', '<none>')!r} is not defaults/main.yml's {defaults[name]!r}")
    wrong += [f"{name}: a default the spec does not declare" for name in defaults if name not in options]
    return [f"{role}: {w}" for w in wrong]


def test_every_role_with_defaults_has_a_spec() -> None:
    assert set(contract.role_defaults()) <= set(specs())


@pytest.mark.parametrize("role", sorted(specs()))
def test_the_spec_declares_the_defaults(role: str) -> None:
    assert mismatches(role, specs()[role], contract.role_defaults().get(role, {})) == []


def test_a_spec_that_drifts_from_its_defaults_is_caught() -> None:
    options = {"r_size": {"type": "int", "default": 1}, "r_url": {"type": "str", "default": ""}, "r_old": {"type": "str", "default": "x"}}
    defaults = {"r_size": 2, "r_url": "{{ kit.cache.url }}", "r_new": True}
    wrong = mismatches("r", options, defaults)
    assert len(wrong) == 4
    assert any("r_size" in w and "2" in w for w in wrong)
    assert any("r_url" in w and "required" in w for w in wrong)
    assert any("r_old" in w for w in wrong) and any("r_new" in w for w in wrong)
