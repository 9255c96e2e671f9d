"""The one YAML loader refuses what can blow up: aliases, huge or deep files."""

from __future__ import annotations

import os
import resource
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from monitor.config.rules import load_rules
from monitor.config.watchlist import load_watchlist
from monitor.config.yamlfile import MAX_YAML_BYTES, load_yaml
from monitor.errors import ConfigError
from monitor.settings import Settings

REPO = Path(__file__).resolve().parents[2]


def _laughs(levels: int) -> str:
    """A "billion laughs" file: each level is nine aliases of the one above."""
    lines = ['l0: &l0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for level in range(1, levels + 1):
        above = f"*l{level - 1}"
        lines.append(f"l{level}: &l{level} [{', '.join([above] * 9)}]")
    return "\n".join(lines) + "\n"


def _write(tmp_path: Path, text: str, name: str = "file.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("text", "line"),
    [
        ("a: 1\nb: &x [1, 2]\n", 2),
        ("a: &x 1\nb: *x\n", 1),
        ("base: {k: 1}\nother:\n  - *base\n", 3),
        ("base: &b {k: 1}\nother:\n  <<: *b\n", 1),
        (_laughs(2), 1),
    ],
)
def test_anchors_and_aliases_are_refused_naming_the_line(
    tmp_path: Path, text: str, line: int
) -> None:
    path = _write(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        load_yaml(path)
    assert caught.value.problems == [
        f"{path} line {line}: YAML anchors and aliases are not allowed"
    ]


@pytest.mark.parametrize(
    "load", [load_rules, load_watchlist, lambda path: Settings.load({}, path)]
)
def test_every_config_file_goes_through_the_same_refusal(
    tmp_path: Path, load: Callable[[Path], object]
) -> None:
    # Two levels only: should the refusal regress, this test must not eat
    # the machine's memory (the eight-level file runs in a limited process).
    path = _write(tmp_path, _laughs(2))
    with pytest.raises(ConfigError, match="anchors and aliases are not allowed"):
        load(path)


def test_a_file_over_the_size_limit_is_refused_unparsed(tmp_path: Path) -> None:
    assert MAX_YAML_BYTES == 1024 * 1024
    line = "# " + "x" * 97 + "\n"
    path = _write(tmp_path, "a: 1\n" + line * (MAX_YAML_BYTES // len(line)))
    assert load_yaml(path).data == {"a": 1}  # just under the limit
    with path.open("a", encoding="utf-8") as file:
        file.write(line)
    with pytest.raises(ConfigError, match=r"larger than 1024 KiB"):
        load_yaml(path)


def test_deep_nesting_is_a_config_error_not_a_crash(tmp_path: Path) -> None:
    path = _write(tmp_path, "a: " + "[" * 5000 + "]" * 5000 + "\n")
    with pytest.raises(ConfigError, match="nested too deeply"):
        load_yaml(path)


def test_rules_check_refuses_eight_levels_of_aliases_quickly(tmp_path: Path) -> None:
    path = _write(tmp_path, _laughs(8), "rules.yaml")
    assert len(path.read_bytes()) < 500  # expands to 9**8 * 8 strings if loaded

    def limit_memory() -> None:
        # Without the refusal the command would need gigabytes: fail, not swap.
        gib = 2 * 1024**3
        resource.setrlimit(resource.RLIMIT_AS, (gib, gib))

    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "monitor", "rules", "check", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
        env={k: v for k, v in os.environ.items() if not k.startswith("MONITOR_")},
        preexec_fn=limit_memory,
        check=False,
    )
    elapsed = time.monotonic() - started

    assert done.returncode == 2, done.stderr[-2000:]
    refusal = f"{path} line 1: YAML anchors and aliases are not allowed"
    assert done.stdout == refusal + "\n"
    assert elapsed < 10
