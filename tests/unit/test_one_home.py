"""A rule or bound used in several places is written once, in its lower layer.

``records`` is the lowest layer: the control characters, the URL rule and
UTF-8 cutting live there, and the CLI and the notifiers import them.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from monitor import records
from monitor.cli.output import dump_json, safe_text
from monitor.errors import ConfigError, InvalidRecordError
from monitor.records import CONTROL_CHARACTERS, parse_post
from monitor.sinks.notifiers import link_target, payloads

POST = {"id": "c", "text": "x", "published_at": "2026-11-20T10:00:00Z"}
#: Every character CONTROL_CHARACTERS matches (C0, DEL, C1, bidi marks).
CONTROLS = [chr(code) for code in range(0x2070) if CONTROL_CHARACTERS.match(chr(code))]


def test_control_characters_cover_c0_del_c1_and_the_bidi_overrides() -> None:
    assert len(CONTROLS) == 32 + 1 + 32 + 2 + 5 + 4
    assert {"\x1b", "\x7f", "\x9b", "\u200f", "\u202e", "\u2066"} <= set(CONTROLS)


@pytest.mark.parametrize("char", CONTROLS, ids=lambda char: f"U+{ord(char):04X}")
def test_each_control_character_is_handled_alike_everywhere(char: str) -> None:
    url = f"https://weibo.example/a{char}b"

    assert link_target(url) is None
    with pytest.raises(InvalidRecordError, match="url must be an http"):
        parse_post({**POST, "url": url})
    shown = "a\nb" if char == "\n" else "a\tb" if char == "\t" else "ab"
    assert safe_text(f"a{char}b", markup=False) == shown
    dumped = dump_json({"excerpt": f"a{char}b"})
    assert char not in dumped.replace("\n", "") and json.loads(dumped) == {
        "excerpt": f"a{char}b"
    }


def test_wecom_cuts_markdown_with_the_records_cutter() -> None:
    assert payloads.cut_utf8 is records.cut_utf8
    assert not hasattr(payloads, "_truncate_utf8")


def test_the_dead_letter_payload_cap_has_one_name() -> None:
    import monitor.pipelines.batches

    assert not hasattr(monitor.pipelines.batches, "MAX_DEAD_LETTER_PAYLOAD_CHARS")


# --- Elasticsearch: one template builder, one bulk helper ----------------------


def test_every_index_template_comes_from_the_one_builder(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from monitor.sinks.elasticsearch import templates, tickets, windows

    built: list[str] = []
    original = templates.index_template

    def recording(pattern: str, *args: Any, **kwargs: Any) -> dict[str, Any]:
        built.append(pattern)
        return original(pattern, *args, **kwargs)

    monkeypatch.setattr(templates, "index_template", recording)
    templates.post_index_template("m")
    templates.count_index_template("m")
    templates.burst_index_template("m")
    templates.ticket_index_templates("m")
    assert len(built) == 6
    for module in (windows, tickets):
        for name in ("_template", "count_index_template", "COUNT_MAPPING", "_KEYWORD"):
            assert not hasattr(module, name), (module.__name__, name)
    assert tickets.ticket_index_templates is templates.ticket_index_templates
    assert tickets.TEXT_FIELDS is templates.TEXT_FIELDS


def test_every_bulk_write_goes_through_the_one_bulk_helper() -> None:
    import inspect

    from monitor.sinks.elasticsearch import bulk, tickets

    assert tickets.bulk_write is bulk.bulk_write
    assert not hasattr(bulk.ElasticsearchSink, "_write_chunk")
    for method in (bulk.ElasticsearchSink.write, tickets.TicketStore.write_events):
        source = inspect.getsource(method)
        assert "bulk_write(" in source and '"status"' not in source


# --- config: one parser of durations, offsets, channel settings, topics --------


def test_durations_and_utc_offsets_have_one_parser() -> None:
    from monitor.config import durations, rules
    from monitor.sinks.elasticsearch import bulk, posts
    from monitor.sinks.notifiers import notifier

    assert rules.parse_duration is durations.parse_duration
    assert rules.parse_utc_offset is durations.parse_utc_offset
    assert posts.parse_utc_offset is durations.parse_utc_offset
    for module in (rules, bulk, posts, notifier):
        assert not hasattr(module, "_zone") and not hasattr(module, "_DURATION")


def test_channel_settings_have_one_check() -> None:
    from monitor.config import channels, rules
    from monitor.sinks.notifiers import notifier

    assert notifier.check_channel_settings is channels.check_channel_settings
    assert rules.check_channel_value is channels.check_channel_value
    for name in ("check_settings", "_http_url", "_texts", "_check_email"):
        assert not hasattr(notifier, name), name


def test_watched_topics_have_one_reader(tmp_path: Path) -> None:
    from monitor.config import rules, watchlist

    assert rules.read_topic is watchlist.read_topic
    # The rules file refuses what the watch list refuses: "&nbsp;" normalises
    # to "" and would match every post.
    topics = "topics:\n  空调:\n    keywords: [空调, '&nbsp;']\n"
    path = tmp_path / "topics.yaml"
    path.write_text(topics, encoding="utf-8")
    with pytest.raises(ConfigError, match="line 3: keywords of '空调' must be"):
        watchlist.load_watchlist(path)
    path.write_text(
        topics + "teams:\n  ops:\n    members: [a]\nrouting:\n  default_team: ops\n",
        encoding="utf-8",
    )
    with pytest.raises(ConfigError, match="line 3: keywords of '空调' must be"):
        rules.load_rules(path)
