"""Text normalisation applied before scoring, keyword extraction and matching.

Every pattern here runs in time linear in the text, whatever the text: post
text comes from strangers, and a backtracking blow-up holds the GIL (and with
it the whole worker). Tag patterns stop at the next ``<`` as well as at
``>``, so the scans started at different ``<`` never overlap; see
``tests/unit/test_linear_time.py`` and ``benchmarks/bench_text_worst.py``.
"""

from __future__ import annotations

import html
import re

import opencc

#: Longest markup tag stripped, in characters between ``<`` and ``>``.
MAX_TAG_CHARS = 2000

_BREAK_TAG = re.compile(
    r"<\s*(?:br|/p|/div|/li)\b[^<>]{0,%d}>" % MAX_TAG_CHARS, re.IGNORECASE
)
_TAG = re.compile(r"<[^<>]{0,%d}>" % MAX_TAG_CHARS)
# A decimal character reference of 8 or more digits: html.unescape would call
# int() on all of them, which refuses more than 4,300 digits (ValueError) and
# is quadratic below that. 8 significant digits are past U+10FFFF anyway.
_LONG_DECIMAL_REF = re.compile(r"&#([0-9]{8,});?")
_SPACE = re.compile(r"\s+")
# OpenCC's phrase-aware table leaves simplified text alone; snownlp's own
# table does not (it turns 效果显著 into 效果显着, 芝士 into 乾酪).
_TO_SIMPLIFIED = opencc.OpenCC("t2s")


def normalise_text(text: str) -> str:
    """Return the text as the pipeline scores and searches it.

    Strips HTML tags (line-breaking tags become spaces), decodes HTML
    entities, converts traditional characters to simplified (OpenCC ``t2s``),
    and collapses runs of whitespace into single spaces. Runs in time linear
    in the length of the text and never raises for any string.

    Args:
        text: The text as a source delivered it.

    Returns:
        The normalised text; ``""`` when nothing but markup or whitespace is left.

    """
    # Tags start with "<" and references with "&": most posts have neither,
    # and a test of a character is cheaper than a regex scan.
    if "<" in text:
        text = _BREAK_TAG.sub(" ", text)
        text = _TAG.sub("", text)
    if "&" in text:
        text = _LONG_DECIMAL_REF.sub(_shorten_decimal_ref, text)
        text = html.unescape(text)
    text = _TO_SIMPLIFIED.convert(text)
    return _SPACE.sub(" ", text).strip()


def _shorten_decimal_ref(match: re.Match[str]) -> str:
    """Return the reference without leading zeros, or U+FFFD as unescape gives.

    Beyond U+10FFFF html.unescape yields the replacement character; leading
    zeros do not change the code point.
    """
    digits = match.group(1).lstrip("0")
    if len(digits) > 7:
        return "\ufffd"
    return f"&#{digits or '0'};"
