"""Hot reload of the rules file: good edits apply, bad edits keep the old rules."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest

from monitor.config.rules import RuleSet, load_rules
from monitor.config.ruleswatch import RulesWatcher
from monitor.errors import ConfigError

RULES = """\
topics:
  空调异味:
    keywords: [空调, 异味]
    rules:
      - name: 负面声量
        kind: negative_volume
        threshold: {threshold}
        window: 5m
        channels: [hook]
owners:
  王工: {{email: w@example.com}}
teams:
  ops:
    members: [王工]
channels:
  hook: {{kind: webhook, url: "${{ALERT_WEBHOOK_URL}}"}}
routing:
  default_team: ops
"""

#: A typo in a key: the loader names it with its line.
BAD = RULES.format(threshold=6).replace("threshold: 6", "treshold: 6")


def _write(path: Path, text: str, *, tick: int) -> None:
    """Write ``text`` and move the mtime ``tick`` seconds on (no clock races)."""
    path.write_text(text, encoding="utf-8")
    stamp = 1_700_000_000 + tick
    os.utime(path, (stamp, stamp))


def _threshold(rules: RuleSet) -> float:
    (rule,) = rules.rules
    return rule.threshold


@pytest.fixture
def path(tmp_path: Path) -> Path:
    path = tmp_path / "rules.yaml"
    _write(path, RULES.format(threshold=6), tick=0)
    return path


def test_loads_the_file_at_start(path: Path) -> None:
    watcher = RulesWatcher(path)
    assert _threshold(watcher()) == 6
    assert watcher() is watcher.current
    assert watcher.problems == []
    assert watcher.check() is False  # unchanged


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (BAD, r"line 7: unknown key 'treshold'"),
        ("topics:\n  a: [1, 2\n", "invalid YAML"),
    ],
)
def test_a_bad_file_at_start_raises(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "rules.yaml"
    _write(path, text, tick=0)
    with pytest.raises(ConfigError, match=message):
        RulesWatcher(path)


def test_a_missing_file_at_start_raises(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        RulesWatcher(tmp_path / "missing.yaml")


def test_reloads_a_changed_file_and_calls_on_change(path: Path) -> None:
    seen: list[RuleSet] = []
    watcher = RulesWatcher(path, on_change=seen.append)
    _write(path, RULES.format(threshold=9), tick=10)
    assert watcher.check() is True
    assert _threshold(watcher()) == 9
    assert seen == [watcher.current]
    assert watcher.check() is False  # picked up once
    assert len(seen) == 1


def test_a_touched_file_with_the_same_size_is_reloaded(path: Path) -> None:
    watcher = RulesWatcher(path)
    _write(path, RULES.format(threshold=7), tick=10)  # same length as 6
    assert watcher.check() is True
    assert _threshold(watcher()) == 7


def test_a_bad_edit_keeps_the_old_rules_and_says_why(
    path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    seen: list[RuleSet] = []
    watcher = RulesWatcher(path, on_change=seen.append)
    before = watcher.current
    _write(path, BAD, tick=10)
    with caplog.at_level(logging.ERROR, logger="monitor.config.ruleswatch"):
        assert watcher.check() is False
    assert watcher.current is before
    assert len(watcher.problems) == 2
    assert any("line 7: unknown key 'treshold'" in p for p in watcher.problems)
    assert any("needs 'threshold'" in p for p in watcher.problems)
    assert "keeping the previous rules" in caplog.text
    assert seen == []
    # the broken file is not re-read until it changes again
    assert watcher.check() is False
    assert len(watcher.problems) == 2
    # fixed: used again, and the problems are gone
    _write(path, RULES.format(threshold=8), tick=20)
    assert watcher.check() is True
    assert _threshold(watcher()) == 8
    assert watcher.problems == []
    assert len(seen) == 1


def test_a_deleted_file_keeps_the_old_rules(path: Path) -> None:
    watcher = RulesWatcher(path)
    before = watcher.current
    path.unlink()
    assert watcher.check() is False
    assert watcher.current is before
    assert watcher.problems and "cannot read" in watcher.problems[0]
    _write(path, RULES.format(threshold=5), tick=10)
    assert watcher.check() is True
    assert _threshold(watcher()) == 5


def test_on_change_sees_the_new_rules_in_use(path: Path) -> None:
    in_use: list[float] = []
    watcher: RulesWatcher

    def on_change(rules: RuleSet) -> None:
        assert watcher.current is rules
        in_use.append(_threshold(watcher()))

    watcher = RulesWatcher(path, on_change=on_change)
    _write(path, RULES.format(threshold=4), tick=10)
    watcher.check()
    assert in_use == [4]


def test_an_unchanged_file_is_not_parsed_again(
    path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    watcher = RulesWatcher(path)
    loads: list[Path] = []

    def counting_load(loaded: Path, **windows: int) -> RuleSet:
        loads.append(loaded)
        return load_rules(loaded, **windows)

    monkeypatch.setattr("monitor.config.ruleswatch.load_rules", counting_load)
    for _ in range(3):
        assert watcher.check() is False
    assert loads == []
    _write(path, RULES.format(threshold=7), tick=10)
    watcher.check()
    assert loads == [path]


def test_a_file_replaced_by_rename_is_reloaded_even_with_same_size_and_mtime(
    path: Path,
) -> None:
    watcher = RulesWatcher(path)
    replacement = path.with_name("rules.yaml.new")
    _write(replacement, RULES.format(threshold=7), tick=0)  # same size, same mtime
    os.replace(replacement, path)
    assert watcher.check() is True
    assert _threshold(watcher()) == 7


def test_windows_are_checked_against_the_buckets_given(path: Path) -> None:
    # 5m is 2.5 buckets of 120 s: refused at start, and on a reload.
    with pytest.raises(
        ConfigError,
        match=r"line 8: window 5m is not a whole number "
        r"of 120s buckets \(MONITOR_BUCKET_SECONDS\)",
    ):
        RulesWatcher(path, bucket_seconds=120, detector_window_seconds=600)
    watcher = RulesWatcher(path, bucket_seconds=100, detector_window_seconds=600)
    _write(path, RULES.format(threshold=7).replace("window: 5m", "window: 4m"), tick=10)
    assert watcher.check() is False
    assert (
        watcher.problems
        and "window 4m is not a whole number of 100s buckets" in (watcher.problems[0])
    )
