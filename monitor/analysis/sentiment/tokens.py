"""snownlp's words of a batch of texts as numpy arrays, without a string per word.

A trained model (:mod:`~monitor.analysis.sentiment.linear`) needs, per text,
which words, word pairs and character n-grams it holds, not the words as
Python strings. Making a string of every word and hashing it to find its
vocabulary index costs more than the model's arithmetic, so this module
derives the same words from code-point arrays:

- ``snownlp.seg.seg`` splits a text into runs of CJK characters (tagged by
  the segmenter into words) and the text between them, split on whitespace.
  So the words joined are the text without its whitespace, and a word
  starts at a run start, at a tagger word start within a run, or at a
  non-CJK character that follows whitespace, a CJK character or the text
  start. The tagger is the segmenter's own, called once for the batch.
- A word is named by a 64-bit hash of its code points (a polynomial hash
  modulo 2**64 from prefix sums, then mixed), the same hash
  :func:`word_hashes` gives a vocabulary. Two different words share a hash
  with probability about 2**-64 per pair.

:func:`batch_tokens` equals segmenting each text and hashing its words
(tests check it against ``FastSnowNLP.segment_many``).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import chain
from typing import Protocol

import numpy as np
import numpy.typing as npt

IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]

_CJK_FIRST, _CJK_LAST = 0x4E00, 0x9FA5
_ZH_RUN = re.compile("[\u4e00-\u9fa5]+")  # snownlp's re_zh, without the group
#: str.split()'s whitespace: every such code point is below U+3001.
_SPACE_LIMIT = 0x3001
_IS_SPACE = np.array([chr(c).isspace() for c in range(_SPACE_LIMIT)], dtype=bool)

_POWER = np.uint64(0x100000001B3)  # odd, so invertible modulo 2**64
_POWER_INVERSE = np.uint64(pow(0x100000001B3, -1, 2**64))
_MIX_A = np.uint64(0xBF58476D1CE4E5B9)
_MIX_B = np.uint64(0x94D049BB133111EB)
_LENGTH_MIX = np.uint64(0xD6E8FEB86659FD93)
_PAIR_MIX = np.uint64(0xFF51AFD7ED558CCD)


class RunTagger(Protocol):
    """The segmenter's tagger (``FastSnowNLP.tagger``)."""

    is_bs: BoolArray
    is_e: BoolArray

    def tag_runs(self, runs: Sequence[str]) -> IntArray:
        """Return the tag index of every character of the runs, concatenated."""
        ...


@dataclass(frozen=True)
class Tokens:
    """A batch's words as arrays.

    Attributes:
        points: Code points of each text's words joined, texts one after
            another.
        doc: The text index of each code point (non-decreasing).
        word_doc: The text index of each word.
        word_hash: Each word's hash (:func:`word_hashes`).

    """

    points: IntArray
    doc: IntArray
    word_doc: IntArray
    word_hash: npt.NDArray[np.uint64]


def _powers(base: np.uint64, count: int) -> npt.NDArray[np.uint64]:
    """Return ``base ** i`` modulo 2**64 for i in range(count)."""
    out = np.full(count, base, dtype=np.uint64)
    if count:
        out[0] = 1
    with np.errstate(over="ignore"):
        return np.cumprod(out, dtype=np.uint64)


def _mix(h: npt.NDArray[np.uint64]) -> npt.NDArray[np.uint64]:
    """Mix bits bijectively (splitmix64's finaliser), so near hashes spread."""
    with np.errstate(over="ignore"):
        h = (h ^ (h >> np.uint64(30))) * _MIX_A
        h = (h ^ (h >> np.uint64(27))) * _MIX_B
        return h ^ (h >> np.uint64(31))


def span_hashes(points: IntArray, starts: IntArray) -> npt.NDArray[np.uint64]:
    """Hash of each span ``points[starts[i]:starts[i + 1]]`` (the last to the end).

    Args:
        points: Code points.
        starts: Increasing span starts, the first 0 (if any points).

    """
    n = len(points)
    if not len(starts):
        return np.zeros(0, np.uint64)
    with np.errstate(over="ignore"):
        weighted = points.astype(np.uint64) * _powers(_POWER, n)
        prefix = np.concatenate([np.zeros(1, np.uint64), np.cumsum(weighted)])
        ends = np.append(starts[1:], n)
        raw = (prefix[ends] - prefix[starts]) * _powers(_POWER_INVERSE, n)[starts]
        raw += (ends - starts).astype(np.uint64) * _LENGTH_MIX
    return _mix(raw)


def pair_hashes(
    first: npt.NDArray[np.uint64], second: npt.NDArray[np.uint64]
) -> IntArray:
    """Return a key per ordered pair of word hashes (word bigrams), as int64."""
    with np.errstate(over="ignore"):
        return _mix(first * _PAIR_MIX + second).view(np.int64)


def word_hashes(words: Sequence[str]) -> npt.NDArray[np.uint64]:
    """Return the hash of each word, as :func:`batch_tokens` names words.

    Raises:
        ValueError: If a word is empty.

    """
    if any(not w for w in words):
        raise ValueError("a word cannot be empty")
    points = np.frombuffer("".join(words).encode("utf-32-le"), "<u4").astype(np.int64)
    lengths = np.fromiter(map(len, words), np.int64, len(words))
    return span_hashes(points, np.cumsum(lengths) - lengths)


def tokens_from_words(words: Sequence[Sequence[str]]) -> Tokens:
    """:class:`Tokens` of texts already segmented (each text's words)."""
    flat = list(chain.from_iterable(words))
    counts = np.fromiter(map(len, words), np.int64, len(words))
    lengths = np.fromiter(map(len, flat), np.int64, len(flat))
    points = np.frombuffer("".join(flat).encode("utf-32-le"), "<u4").astype(np.int64)
    word_doc = np.repeat(np.arange(len(words), dtype=np.int64), counts)
    if len(flat) and not lengths.all():
        keep = lengths > 0  # segment() never yields "", but a caller might
        word_doc, lengths = word_doc[keep], lengths[keep]
    starts = np.cumsum(lengths) - lengths
    return Tokens(
        points=points,
        doc=np.repeat(word_doc, lengths),
        word_doc=word_doc,
        word_hash=span_hashes(points, starts),
    )


def batch_tokens(tagger: RunTagger, texts: Sequence[str]) -> Tokens | None:
    """Return the words of each text, as snownlp segments it, as arrays.

    Args:
        tagger: The segmenter's tagger.
        texts: Texts (any strings).

    Returns:
        The batch's tokens, or None if a text holds U+0000 (the batch
        separator here): segment such texts with strings instead.

    """
    big = "\x00".join(texts)
    if big.count("\x00") != max(len(texts) - 1, 0):
        return None
    points = np.frombuffer(big.encode("utf-32-le"), "<u4").astype(np.int64)
    separator = points == 0
    cjk = (points >= _CJK_FIRST) & (points <= _CJK_LAST)
    space = np.zeros(len(points), dtype=bool)
    low = points < _SPACE_LIMIT
    space[low] = _IS_SPACE[points[low]]
    other = ~(cjk | space | separator)
    begins = np.zeros(len(points), dtype=bool)
    # A non-CJK word starts where the previous character is not one of its kind.
    begins[other] = True
    begins[1:][other[1:] & other[:-1]] = False
    runs = _zh_runs(big)
    if runs:
        tags = tagger.tag_runs(runs)
        in_run = tagger.is_bs[tags]
        in_run[1:] |= tagger.is_e[tags[:-1]]
        run_start = cjk.copy()
        run_start[1:] &= ~cjk[:-1]
        in_run |= run_start[cjk]
        begins[cjk] = in_run
    keep = cjk | other
    doc = np.cumsum(separator)[keep]
    kept_points = points[keep]
    starts = np.flatnonzero(begins[keep])
    return Tokens(
        points=kept_points,
        doc=doc,
        word_doc=doc[starts],
        word_hash=span_hashes(kept_points, starts),
    )


def _zh_runs(text: str) -> list[str]:
    """Return the runs of CJK characters, as ``re_zh.split`` finds them."""
    return _ZH_RUN.findall(text)
