"""Text normalisation applied before scoring, keyword extraction and matching."""

from __future__ import annotations

import html
import re

import opencc

_BREAK_TAG = re.compile(r"<\s*(br|/p|/div|/li)\b[^>]*>", re.IGNORECASE)
_TAG = re.compile(r"<[^>]{0,2000}>")
_SPACE = re.compile(r"\s+")
# OpenCC's phrase-aware table leaves simplified text alone; snownlp's own
# table does not (it turns 效果显著 into 效果显着, 芝士 into 乾酪).
_TO_SIMPLIFIED = opencc.OpenCC("t2s")


def normalise_text(text: str) -> str:
    """Return the text as the pipeline scores and searches it.

    Strips HTML tags (line-breaking tags become spaces), decodes HTML
    entities, converts traditional characters to simplified (OpenCC ``t2s``),
    and collapses runs of whitespace into single spaces.

    Args:
        text: The text as a source delivered it.

    Returns:
        The normalised text; ``""`` when nothing but markup or whitespace is left.

    """
    text = _BREAK_TAG.sub(" ", text)
    text = _TAG.sub("", text)
    text = html.unescape(text)
    text = _TO_SIMPLIFIED.convert(text)
    return _SPACE.sub(" ", text).strip()
