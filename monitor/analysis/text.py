"""Text normalisation applied before scoring, keyword extraction and matching."""

from __future__ import annotations

import html
import re

from snownlp.normal import zh

_BREAK_TAG = re.compile(r"<\s*(br|/p|/div|/li)\b[^>]*>", re.IGNORECASE)
_TAG = re.compile(r"<[^>]{0,2000}>")
_SPACE = re.compile(r"\s+")


def normalise_text(text: str) -> str:
    """Return the text as the pipeline scores and searches it.

    Strips HTML tags (line-breaking tags become spaces), decodes HTML
    entities, converts traditional characters to simplified (snownlp's own
    table), and collapses runs of whitespace into single spaces.

    Args:
        text: The text as a source delivered it.

    Returns:
        The normalised text; ``""`` when nothing but markup or whitespace is left.
    """
    text = _BREAK_TAG.sub(" ", text)
    text = _TAG.sub("", text)
    text = html.unescape(text)
    text = zh.transfer(text)
    return _SPACE.sub(" ", text).strip()
