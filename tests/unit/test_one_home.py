"""A rule or bound used in several places is written once, in its lower layer.

``records`` is the lowest layer: the control characters, the URL rule and
UTF-8 cutting live there, and the CLI and the notifiers import them.
"""

from __future__ import annotations

import json

import pytest

from monitor import records
from monitor.cli.output import dump_json, safe_text
from monitor.errors import InvalidRecordError
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
