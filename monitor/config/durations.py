"""Durations (``5m``, ``1h30m``) and UTC offsets (``+08:00``) as people write them.

The rules file, channel settings, the ticket API and the settings all read
these two forms; this module is the one place that parses them.
"""

from __future__ import annotations

import functools
import re
from datetime import timedelta, timezone
from typing import Any

_DURATION = re.compile(r"(\d+)([smhd])")
_DURATION_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
#: Longer durations are refused (``timedelta`` overflows near 2.7 M years).
MAX_DURATION_SECONDS = 10 * 366 * 86_400

#: ``Z``, ``+08:00`` or ``+0800``.
UTC_OFFSET = re.compile(r"Z|([+-])(\d{2}):?(\d{2})")
#: Largest UTC offset in use on Earth (Kiribati, +14:00).
MAX_UTC_OFFSET_HOURS = 14


def parse_duration(value: Any) -> timedelta:
    """Parse ``30s``, ``5m``, ``1h``, ``2d`` or a combination like ``1h30m``.

    Args:
        value: The text as written (a number without a unit is refused).

    Returns:
        The duration: more than zero, at most :data:`MAX_DURATION_SECONDS`.

    Raises:
        ValueError: With the reason, if the value is not such a text.

    """
    if isinstance(value, bool) or not isinstance(value, str):
        if isinstance(value, int | float) and not isinstance(value, bool):
            raise ValueError(f"duration {value!r} needs a unit: s, m, h or d")
        raise ValueError(f"duration must be text like '5m', got {value!r}")
    text = value.strip()
    if not text or _DURATION.sub("", text):
        raise ValueError(
            f"bad duration {value!r}: use a number and a unit s, m, h or d ('5m')"
        )
    parts = _DURATION.findall(text)
    if any(len(number) > 9 for number, _ in parts):
        raise ValueError(f"duration {value[:40]!r} is too long")
    seconds = sum(int(number) * _DURATION_UNITS[unit] for number, unit in parts)
    if seconds > MAX_DURATION_SECONDS:
        raise ValueError(f"duration {value[:40]!r} is longer than 10 years")
    if seconds <= 0:
        raise ValueError(f"duration {value!r} must be > 0")
    return timedelta(seconds=seconds)


@functools.lru_cache(maxsize=64)
def parse_utc_offset(text: str) -> timezone:
    """Return the fixed zone of ``Z``, ``+08:00`` or ``+0800``.

    Cached: the indexing stage asks for the zone of every post.

    Args:
        text: The offset as written (surrounding spaces are ignored).

    Raises:
        ValueError: If the text is not such an offset, or is beyond +-14:00.

    """
    if not isinstance(text, str):
        raise ValueError(f"UTC offset must be text like '+08:00', got {text!r}")
    match = UTC_OFFSET.fullmatch(text.strip())
    if match is None:
        raise ValueError("a UTC offset must look like +08:00, -05:00 or Z")
    if text.strip() == "Z":
        return timezone.utc
    sign, hours, minutes = match.groups()
    delta = timedelta(hours=int(hours), minutes=int(minutes))
    if int(minutes) >= 60 or delta > timedelta(hours=MAX_UTC_OFFSET_HOURS):
        raise ValueError(
            f"UTC offset {text.strip()} is out of range (-14:00 to +14:00)"
        )
    return timezone(-delta if sign == "-" else delta)
