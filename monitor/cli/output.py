"""What the ``monitor`` commands print, made safe for the operator's terminal.

Everything printed that comes from posts, dead letters, tickets, rules or
settings passes through :func:`safe_text` first: it may hold rich markup
(``[/x]`` would crash the table) or terminal escape sequences. The consoles
print with ``emoji=False``: rich would turn ``:thumbs_down:`` in a post into
an emoji.
"""

from __future__ import annotations

import json
import re
from typing import Any

from rich.console import Console
from rich.markup import escape

#: Progress and status lines (stderr).
console = Console(stderr=True, emoji=False)
#: Command output (stdout).
out = Console(emoji=False)

#: Layout the terminal may keep, though CONTROL_CHARACTERS holds them too.
_LAYOUT = "\t\n"


def _control_characters() -> re.Pattern[str]:
    # Imported here: monitor.records imports faust (a third of a second), and
    # commands that print no data (rules check, tokens hash) start without it.
    from monitor.records import CONTROL_CHARACTERS

    return CONTROL_CHARACTERS


def safe_text(value: object, *, markup: bool = True) -> str:
    """Return ``value`` as text that prints as it is on the operator's terminal.

    Control characters (:data:`monitor.records.CONTROL_CHARACTERS` but
    newline and tab: so ESC and every escape sequence, and the bidirectional
    overrides) are removed, and rich markup is escaped so that text such as
    ``[/x]`` is shown, not parsed.

    Args:
        value: Data from a post, dead letter, ticket, rule or setting.
        markup: False for text printed without rich (``click.echo``, error
            messages): only the control characters are removed then.

    """
    text = _control_characters().sub(_keep_layout, str(value))
    return escape(text) if markup else text


def _keep_layout(match: re.Match[str]) -> str:
    return match[0] if match[0] in _LAYOUT else ""


def dump_json(value: Any) -> str:
    r"""Encode ``value`` as indented JSON for the terminal, data unchanged.

    JSON escapes C0 controls itself; the other
    :data:`monitor.records.CONTROL_CHARACTERS` (DEL, C1, bidirectional
    overrides), which it leaves raw, are written as ``\u`` escapes too: the
    same data, parsed. Newlines are the indentation's (JSON strings never
    hold a raw one).
    """
    text = json.dumps(value, ensure_ascii=False, indent=2, default=str)
    return _control_characters().sub(_json_escape, text)


def _json_escape(match: re.Match[str]) -> str:
    char = match[0]
    return char if char in _LAYOUT else f"\\u{ord(char):04x}"
