"""Features of a text for the linear sentiment model (pure, no I/O).

A text is described by the words of snownlp's segmenter plus, as
:class:`FeatureOptions` asks, word bigrams, character n-grams, negation
marks, weibo emoticon codes (``[怒]``), emoji and repeated punctuation.
Presence only: a feature found twice in a text counts once.

Words, bigrams and character n-grams are integer keys computed for a whole
batch with numpy (:func:`word_bigram_keys`, :func:`char_ngram_keys`); the
extras are short strings with a prefix naming their kind (``n:好吃``,
``e:怒``, ``j:😀``, ``p:!!``), from :func:`extra_features`.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from monitor.analysis.sentiment.tokens import tokens_from_words
from monitor.errors import MonitorError

IntArray = npt.NDArray[np.int64]

#: Words that negate what follows (after snownlp's segmentation, 没有 and
#: 不是 are often one word; 不好 is one word too and then needs no mark).
NEGATORS = frozenset(
    {"不", "没", "没有", "别", "不是", "不要", "不会", "不能", "不太", "无", "非", "未"}
)
#: Tokens that end a negation scope.
SCOPE_END = frozenset("，。！？；,.!?;~～、…")
# A weibo emoticon code: [怒], [doge], [哈哈] (at most 8 characters inside).
_EMOTICON = re.compile(r"\[([^\[\]\s]{1,8})\]")
# Two or more of the same punctuation mark: !!, ！！！, ??, 。。。, ~~, …….
_REPEATED_PUNCTUATION = re.compile(r"([!！?？。~～.…])\1+")
#: Longest text (characters) whose character n-grams are taken: bounds the
#: work per text; the words still cover the rest.
MAX_NGRAM_CHARS = 2000


class InvalidFeatureOptionsError(MonitorError):
    """Feature options that make no sense (say, n-grams of length 0)."""


@dataclass(frozen=True)
class FeatureOptions:
    """Which features the linear model uses.

    Attributes:
        words: snownlp's words (``w:``).
        word_bigrams: Adjacent word pairs (``b:``).
        char_ngrams: Lengths of character n-grams (``c:``) of the Chinese
            runs and other tokens, e.g. ``(2, 3)``; empty for none.
        negation_scope: How many words after a negator are marked (``n:``
            plus the word, besides the plain word); 0 for none.
        emoticons: Weibo emoticon codes ``[怒]`` as one feature each (``e:``).
        emoji: Emoji and other symbols (Unicode category So) (``j:``).
        repeated_punctuation: Runs such as ``!!`` or ``。。。`` (``p:``).

    """

    words: bool = True
    word_bigrams: bool = True
    char_ngrams: tuple[int, ...] = ()
    negation_scope: int = 0
    emoticons: bool = False
    emoji: bool = False
    repeated_punctuation: bool = False

    def __post_init__(self) -> None:
        if any(not 1 <= n <= 3 for n in self.char_ngrams) or len(
            set(self.char_ngrams)
        ) != len(self.char_ngrams):
            raise InvalidFeatureOptionsError(
                "character n-gram lengths must be distinct, 1-3, "
                f"got {self.char_ngrams}"
            )
        if not 0 <= self.negation_scope <= 10:
            raise InvalidFeatureOptionsError(
                f"negation scope must be 0-10 words, got {self.negation_scope}"
            )

    @property
    def has_extras(self) -> bool:
        """Whether any string feature (:func:`extra_features`) is on."""
        return bool(self.emoticons or self.emoji or self.repeated_punctuation)

    def to_dict(self) -> dict[str, Any]:
        """Return the options as JSON data (``char_ngrams`` as a list)."""
        data = asdict(self)
        data["char_ngrams"] = list(self.char_ngrams)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FeatureOptions:
        """Options from :meth:`to_dict`'s data.

        Raises:
            InvalidFeatureOptionsError: On an unknown key or a bad value.

        """
        known = set(cls.__dataclass_fields__)
        unknown = set(data) - known
        if unknown:
            raise InvalidFeatureOptionsError(
                f"unknown feature options {sorted(unknown)}"
            )
        values = dict(data)
        if "char_ngrams" in values:
            values["char_ngrams"] = tuple(int(n) for n in values["char_ngrams"])
        return cls(**values)


def extra_features(
    text: str, words: Sequence[str], options: FeatureOptions
) -> set[str]:
    """Return the extra string features of one text (negation, codes, emoji...).

    Args:
        text: The normalised text (as the score stage scores it).
        words: Its words, ``FastSnowNLP.segment(text)``.
        options: Which features.

    Returns:
        The distinct feature strings; empty unless an extra is switched on.

    """
    features: set[str] = set()
    if options.emoticons and "[" in text:
        features.update("e:" + code for code in _EMOTICON.findall(text))
    if options.emoji:
        features.update(
            "j:" + ch
            for ch in text
            if ord(ch) > 0x2000 and unicodedata.category(ch) == "So"
        )
    if options.repeated_punctuation:
        features.update("p:" + m * 2 for m in _REPEATED_PUNCTUATION.findall(text))
    return features


def negated(flat: Sequence[str], doc: IntArray, scope: int) -> npt.NDArray[np.bool_]:
    """Mark the words in a negation's scope, for a batch of texts' words.

    A word is marked if one of the ``scope`` words before it in its text is
    a negator (:data:`NEGATORS`) with no scope end (punctuation) between
    them, itself included: ``不 太 好 ，好`` marks 太 and 好, not the last 好.

    Args:
        flat: Every text's words, one after the other.
        doc: The text index of each word (non-decreasing).
        scope: How many words after a negator are marked.

    """
    count = len(flat)
    return negation_marks(
        np.fromiter((w in NEGATORS for w in flat), bool, count),
        np.fromiter((w in SCOPE_END for w in flat), bool, count),
        doc,
        scope,
    )


def negation_marks(
    negator: npt.NDArray[np.bool_],
    scope_end: npt.NDArray[np.bool_],
    doc: IntArray,
    scope: int,
) -> npt.NDArray[np.bool_]:
    """:func:`negated`, given which words are negators and which end a scope."""
    count = len(negator)
    marked = np.zeros(count, dtype=bool)
    if not scope or not count:
        return marked
    ends = np.concatenate([[0], np.cumsum(scope_end, dtype=np.int64)])
    for j in range(1, min(scope, count - 1) + 1):
        p = np.arange(j, count)
        marked[j:] |= (
            negator[p - j] & (doc[p - j] == doc[p]) & (ends[p + 1] == ends[p - j + 1])
        )
    return marked


def word_bigram_keys(doc: IntArray, ids: IntArray) -> tuple[IntArray, IntArray]:
    """Return the keys ``a << 32 | b`` of adjacent known words, and their texts.

    Args:
        doc: Text index of each word of a batch, non-decreasing.
        ids: Vocabulary index of each word, -1 if unknown.

    """
    if len(ids) < 2:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    a, b = ids[:-1], ids[1:]
    valid = (doc[:-1] == doc[1:]) & (a >= 0) & (b >= 0)
    return doc[:-1][valid], (a[valid] << 32) | b[valid]


def char_ngram_keys(
    words: Sequence[Sequence[str]], sizes: Sequence[int]
) -> dict[int, tuple[IntArray, IntArray]]:
    """Return the character n-grams of each text's words, packed, and their texts.

    The n-grams run over the text's words joined (spaces dropped), at most
    :data:`MAX_NGRAM_CHARS` characters of it, U+0000 then dropped; the key
    packs the code points 21 bits each (n <= 3 fits an int64).

    Args:
        words: Each text's words.
        sizes: The n of each kind wanted, 1-3.

    Returns:
        Per n, ``(text index, key)`` per n-gram occurrence.

    """
    if not sizes:
        return {}
    tokens = tokens_from_words(words)
    kept, kept_doc = ngram_points(tokens.points, tokens.doc)
    return {size: char_ngrams(kept, kept_doc, size) for size in sizes}


def ngram_points(points: IntArray, doc: IntArray) -> tuple[IntArray, IntArray]:
    """Return the code points n-grams are taken from, and their texts.

    Args:
        points: Each text's words joined, as code points, texts in order.
        doc: The text of each code point (non-decreasing).

    Returns:
        Each text's first :data:`MAX_NGRAM_CHARS` code points without U+0000.

    """
    count = len(points)
    if not count:
        return points, doc
    index = np.arange(count, dtype=np.int64)
    starts = np.ones(count, dtype=bool)
    starts[1:] = doc[1:] != doc[:-1]
    first = np.maximum.accumulate(np.where(starts, index, 0))
    keep = (index - first < MAX_NGRAM_CHARS) & (points != 0)
    return points[keep], doc[keep]


def char_ngrams(
    points: IntArray, doc: IntArray, size: int
) -> tuple[IntArray, IntArray]:
    """Return ``(text index, packed key)`` of each n-gram of ``size`` within one text.

    Args:
        points: Code points (:func:`ngram_points`).
        doc: The text of each (non-decreasing).
        size: n, 1-3.

    """
    count = len(points) - size + 1
    if count <= 0:
        empty = np.zeros(0, np.int64)
        return empty, empty
    keys = points[:count].copy()
    for j in range(1, size):
        keys = (keys << 21) | points[j : j + count]
    valid = doc[:count] == doc[size - 1 :]
    return doc[:count][valid], keys[valid]


def strip_emoticon_codes(text: str) -> str:
    """Return the text without its weibo emoticon codes (``[怒]``), spaces collapsed."""
    return " ".join(_EMOTICON.sub(" ", text).split())
