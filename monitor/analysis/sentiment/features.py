"""Features of a text for the linear sentiment model (pure, no I/O).

A text is described by the words of snownlp's segmenter plus, as
:class:`FeatureOptions` asks, word bigrams, character n-grams, negation
marks, weibo emoticon codes (``[怒]``), emoji and repeated punctuation. Each
feature is a short string with a prefix naming its kind (``w:好吃``,
``b:很|好吃``, ``c:好吃``, ``n:好吃``, ``e:怒``, ``j:😀``, ``p:!!``); the
model keeps a weight per string it saw in training. Presence only: a
feature counted twice in a text counts once.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from monitor.errors import MonitorError

#: Words that negate what follows (after snownlp's segmentation, 没有 and
#: 不是 are often one word; 不好 is one word too and then needs no mark).
NEGATORS = frozenset(
    {"不", "没", "没有", "别", "不是", "不要", "不会", "不能", "不太", "无", "非", "未"}
)
#: Tokens that end a negation scope.
_SCOPE_END = frozenset("，。！？；,.!?;~～、…")
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
        if any(not 1 <= n <= 6 for n in self.char_ngrams):
            raise InvalidFeatureOptionsError(
                f"character n-gram lengths must be 1-6, got {self.char_ngrams}"
            )
        if not 0 <= self.negation_scope <= 10:
            raise InvalidFeatureOptionsError(
                f"negation scope must be 0-10 words, got {self.negation_scope}"
            )

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


def text_features(text: str, words: Sequence[str], options: FeatureOptions) -> set[str]:
    """Return the features of one text.

    Args:
        text: The normalised text (as the score stage scores it).
        words: Its words, ``FastSnowNLP.segment(text)``.
        options: Which features.

    Returns:
        The distinct feature strings.

    """
    features: set[str] = set()
    if options.words:
        features.update("w:" + w for w in words)
    if options.word_bigrams and len(words) > 1:
        features.update(f"b:{a}|{b}" for a, b in zip(words, words[1:], strict=False))
    if options.char_ngrams:
        compact = "".join(words)[:MAX_NGRAM_CHARS]
        for n in options.char_ngrams:
            features.update(
                "c:" + compact[i : i + n] for i in range(len(compact) - n + 1)
            )
    if options.negation_scope:
        left = 0
        for w in words:
            if w in _SCOPE_END:
                left = 0
            elif left:
                features.add("n:" + w)
                left -= 1
            if w in NEGATORS:
                left = options.negation_scope
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


def strip_emoticon_codes(text: str) -> str:
    """Return the text without its weibo emoticon codes (``[怒]``), spaces collapsed."""
    return " ".join(_EMOTICON.sub(" ", text).split())
