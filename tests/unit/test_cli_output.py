"""What the CLI prints from posts, dead letters and tickets cannot take the terminal."""

from __future__ import annotations

import json
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st
from rich.console import Console
from rich.table import Table

from monitor.cli import output
from monitor.cli.output import dump_json, safe_text
from monitor.local.receivers import Received

#: Anything a terminal acts on, besides newline (and tab, which is harmless),
#: and the bidirectional marks, overrides and isolates.
TERMINAL_CONTROLS = re.compile(
    r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]"
)


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        ("空调有股怪味", "空调有股怪味"),
        ("[/x] closes nothing", "[/x] closes nothing"),
        ("[bold red]loud[/]", "[bold red]loud[/]"),
        ("\x1b[31mred\x1b[0m", "[31mred[0m"),
        ("\x1b]0;pwned title\x07after", "]0;pwned titleafter"),
        ("8-bit \x9b31m csi and \x9d osc", "8-bit 31m csi and  osc"),
        ("bell\x07 del\x7f nul\x00 cr\r", "bell del nul cr"),
        ("two\nlines", "two\nlines"),
        (42, "42"),
    ],
)
def test_safe_text_prints_exactly_the_text_without_controls(
    value: object, shown: str
) -> None:
    console = Console(width=200, color_system=None, record=True)

    console.print(safe_text(value))

    assert console.export_text() == shown + "\n"


def test_safe_text_keeps_newlines_and_tabs() -> None:
    assert safe_text("a\tb\nc") == "a\tb\nc"


def test_safe_text_without_markup_only_strips_controls() -> None:
    assert safe_text("[/x]\x1b[2J", markup=False) == "[/x][2J"


@given(st.text())
def test_any_text_prints_in_a_table_without_error_or_controls(text: str) -> None:
    console = Console(width=80, color_system=None, record=True)
    table = Table()
    table.add_column("payload", overflow="fold")
    table.add_row(safe_text(text))

    console.print(table)

    assert not TERMINAL_CONTROLS.search(console.export_text())


@given(st.text())
def test_dump_json_keeps_the_data_and_escapes_every_control(text: str) -> None:
    dumped = dump_json({"payload": text})

    assert json.loads(dumped) == {"payload": text}
    assert not TERMINAL_CONTROLS.search(dumped.replace("\n", ""))


def test_bidirectional_overrides_are_removed() -> None:
    # U+202E would show "gnp.exe" as "exe.png"; isolates and marks likewise.
    assert safe_text("a\u202egnp.exe\u2066b\u2069\u200fc", markup=False) == (
        "agnp.exebc"
    )


def test_dump_json_escapes_bidirectional_overrides_and_keeps_the_data() -> None:
    value = {"excerpt": "a\u202egnp.exe\u2066b\u2069\u200fc", "n": [1, "x"]}

    dumped = dump_json(value)

    assert "\\u202e" in dumped and "\u202e" not in dumped
    assert not TERMINAL_CONTROLS.search(dumped.replace("\n", ""))
    assert json.loads(dumped) == value


@pytest.mark.parametrize("name", ["out", "console"])
def test_cli_consoles_print_emoji_codes_as_text(name: str) -> None:
    printer: Console = getattr(output, name)
    table = Table()
    table.add_column("excerpt")
    table.add_row(safe_text(":thumbs_down: :poop:"))

    with printer.capture() as captured:
        printer.print(safe_text("差评 :thumbs_down:"))
        printer.print(table)

    shown = captured.get()
    assert "差评 :thumbs_down:" in shown and ":poop:" in shown
    assert "👎" not in shown and "💩" not in shown


def test_demo_prints_deliveries_through_the_cli_console_as_text() -> None:
    from monitor.local.demo import _buckets, _print_delivery

    body = {"kind": "opened", "ticket": {"ticket_id": "T-1", "topic": ":fire: [b]"}}
    with output.out.capture() as captured:
        _print_delivery(output.out, Received("webhook", body))
        output.out.print(
            _buckets({"buckets": [{"key": "[bold]:fire:", "doc_count": 2}]})
        )

    shown = captured.get()
    assert ":fire: [b]" in shown and "[bold]:fire: 2" in shown
    assert "🔥" not in shown
