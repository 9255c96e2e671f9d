"""Durations and UTC offsets as people write them: one parser each."""

from __future__ import annotations

from datetime import timedelta, timezone

import pytest

from monitor.config.durations import parse_duration, parse_utc_offset

# --- durations ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("30s", 30),
        ("5m", 300),
        ("1h", 3600),
        ("2d", 172800),
        ("1h30m", 5400),
        (" 10m ", 600),
    ],
)
def test_parse_duration(text: str, seconds: int) -> None:
    assert parse_duration(text) == timedelta(seconds=seconds)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("5x", "bad duration"),
        ("", "bad duration"),
        ("m5", "bad duration"),
        ("1.5h", "bad duration"),
        ("-5m", "bad duration"),
        ("5", "bad duration"),
        ("0m", "must be > 0"),
        (300, "needs a unit"),
        (None, "must be text"),
        (True, "must be text"),
    ],
)
def test_parse_duration_rejects(value: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_duration(value)


@pytest.mark.parametrize("text", ["99999999999999999999d", "4000d", "9999999999s"])
def test_a_huge_duration_is_a_value_error_not_an_overflow(text: str) -> None:
    with pytest.raises(ValueError, match="too long|longer than 10 years"):
        parse_duration(text)


# --- UTC offsets --------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "offset"),
    [
        ("+00:00", timedelta(0)),
        ("Z", timedelta(0)),
        ("+08:00", timedelta(hours=8)),
        ("+0800", timedelta(hours=8)),
        (" +08:00 ", timedelta(hours=8)),
        ("-05:00", timedelta(hours=-5)),
        ("+05:30", timedelta(hours=5, minutes=30)),
        ("-09:30", -timedelta(hours=9, minutes=30)),
        ("+14:00", timedelta(hours=14)),
        ("-12:00", timedelta(hours=-12)),
    ],
)
def test_parse_utc_offset(text: str, offset: timedelta) -> None:
    assert parse_utc_offset(text) == timezone(offset)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("+8", "must look like"),
        ("08:00", "must look like"),
        ("+08:00:00", "must look like"),
        ("UTC", "must look like"),
        ("", "must look like"),
        ("+15:00", "out of range"),
        ("+14:30", "out of range"),
        ("+99:99", "out of range"),
        ("+08:60", "out of range"),
        (8, "must be text"),
    ],
)
def test_parse_utc_offset_rejects(text: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_utc_offset(text)  # type: ignore[arg-type]
