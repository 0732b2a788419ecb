"""The config reader under hostile input: generated configs, mutated YAML, aliases,
nesting, encodings. Every outcome is a resolved config or a ConfigError with a message:
never a traceback, never a hang, nothing written beside the file.

Hypothesis generates the input; each case also records how long it took, and the slowest
is printed (a figure, not an assertion).
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from labkit.cluster.config import load
from labkit.cluster.schema import ConfigError
from labkit.errors import KitError
from tests.unit.configs import LIBVIRT_HOST, VALID

SLOWEST: list[float] = [0.0]
COUNTS = {"valid": 0, "clear message": 0}


def outcome(folder: Path, raw: bytes) -> str:
    """'valid' or the ConfigError's text; any other exception fails the test."""
    path = folder / "sandbox.yml"
    path.write_bytes(raw)
    before = sorted(p.name for p in folder.iterdir())
    start = time.monotonic()
    try:
        load(path, LIBVIRT_HOST)
        result = "valid"
        COUNTS["valid"] += 1
    except KitError as exc:
        result = str(exc)
        assert result.strip(), "an empty message"
        COUNTS["clear message"] += 1
    SLOWEST[0] = max(SLOWEST[0], time.monotonic() - start)
    assert sorted(p.name for p in folder.iterdir()) == before, "something was written"
    return result


scalars = st.one_of(st.none(), st.booleans(), st.integers(-(2**40), 2**40), st.floats(allow_nan=True), st.text(max_size=30))
values = st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=12), inner, max_size=4)), max_leaves=25)
KEYS = ["name", "provider", "box", "nodes", "network", "layers", "addons", "versions", "cache", "libvirt", "boot_timeout"]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(st.sampled_from(KEYS), values)
def test_any_value_under_any_key_is_accepted_or_explained(tmp_path: Path, key: str, value: object) -> None:
    data = yaml.safe_load(VALID)
    data[key] = value
    outcome(tmp_path, yaml.safe_dump(data).encode())


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(st.integers(0, len(VALID) - 1), st.integers(0, 20), st.binary(max_size=12))
def test_mutated_yaml_is_accepted_or_explained(tmp_path: Path, at: int, cut: int, insert: bytes) -> None:
    raw = VALID.encode()
    outcome(tmp_path, raw[:at] + insert + raw[at + cut :])


def test_a_billion_laughs_is_refused_at_once(tmp_path: Path) -> None:
    lines = ["a: &a [x, x, x, x, x, x, x, x, x]"]
    lines += [f"{chr(98 + i)}: &{chr(98 + i)} [*{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}]" for i in range(12)]
    message = outcome(tmp_path, ("\n".join(lines) + "\n" + VALID).encode())
    assert "more than 20000 values once its YAML aliases are expanded" in message


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("[" * 5000 + "]" * 5000, "nests deeper than 50 levels"),
        ("\ufeff" + VALID, "valid"),  # a byte-order mark, as Windows editors write
        (VALID.encode("utf-16"), "is UTF-16 text"),
        (VALID.encode("latin-1") + "# café\n".encode("latin-1"), "is not UTF-8 text (byte"),
        (b"\x00" * 10, "NUL character"),
        ("x-node: &node {role: worker, cpus: 2, memory: 2560}\n" + VALID.replace("- {name: worker1, role: worker, cpus: 2, memory: 2560}", "- {<<: *node, name: w1}"), "valid"),
        ("# " + "x" * (1 << 20) + "\n" + VALID, "is larger than 1024 KiB"),
    ],
)
def test_encodings_sizes_nesting_and_merge_keys(tmp_path: Path, raw: str | bytes, message: str) -> None:
    got = outcome(tmp_path, raw if isinstance(raw, bytes) else raw.encode())
    assert message in got


def test_a_folder_where_the_file_belongs_is_explained(tmp_path: Path) -> None:
    folder = tmp_path / "sandbox.yml"
    folder.mkdir()
    with pytest.raises(ConfigError, match="is a folder, not a file"):
        load(folder, LIBVIRT_HOST)


def test_zz_print_the_figures() -> None:
    tried = sum(COUNTS.values())
    print(f"\nconfigs tried: {tried}; valid {COUNTS['valid']}, clear messages {COUNTS['clear message']}, tracebacks 0, hangs 0; slowest {SLOWEST[0] * 1000:.0f} ms")
