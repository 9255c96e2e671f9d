"""Near-duplicate fingerprints: a 64-bit SimHash of a post's text.

The fingerprint is computed in the score stage on the normalised text
(:func:`monitor.analysis.text.normalise_text`) and carried in
``ScoredPost.simhash`` as a *signed* 64-bit integer, the range of
Elasticsearch's ``long`` (an unsigned value would not fit it).

Features are character 3-grams of the text after :func:`fingerprint_text`
drops repost chains and everything that is not a letter or digit, weighted by
how often each occurs. Each shingle is hashed with blake2b (8-byte digest):
stable across processes and machines, unlike Python's salted ``hash()``.
Two texts are near-duplicates when :func:`hamming` of their fingerprints is at
most ``k`` (3 by default).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from functools import lru_cache
from hashlib import blake2b
from typing import TypeVar

import numpy as np

#: Default Hamming distance within which two fingerprints are one group.
DEFAULT_MAX_DISTANCE = 3

#: Characters per shingle.
SHINGLE_CHARS = 3

_T = TypeVar("_T")

# `//@name:` (or full-width colon) starts a quoted link of a repost chain.
_CHAIN_LINK = re.compile(r"//\s*@[^:：\s/]{1,40}\s*[:：]")
# `回复@name:` starts a reply; the name and colon are not content.
_REPLY_TO = re.compile(r"回复\s*@[^:：\s]{1,40}\s*[:：]")
_REPOST_FILLER = re.compile(r"转发微博|轉發微博|repost", re.IGNORECASE)
_MASK = (1 << 64) - 1
# Everything but letters and digits: punctuation, spaces, emoji, underscores.
_NOT_ALNUM = re.compile(r"[\W_]+")


def fingerprint_text(text: str) -> str:
    """Return the part of ``text`` the fingerprint is taken of.

    A repost chain ``comment //@a: comment //@b: origin`` keeps only its last
    non-empty link (the text the storm repeats); ``转发微博`` and ``回复@x:``
    are dropped; then only letters and digits remain, lower-cased, so that
    punctuation, spacing and emoji edits do not move the fingerprint.
    """
    text = _REPOST_FILLER.sub(" ", _REPLY_TO.sub(" ", text))
    links = [link for link in _CHAIN_LINK.split(text) if _has_content(link)]
    if links:
        text = links[-1]
    return _NOT_ALNUM.sub("", text.lower())


def _has_content(text: str) -> bool:
    return any(char.isalnum() for char in text)


@lru_cache(maxsize=65536)
def _shingle_hash(shingle: str) -> int:
    return int.from_bytes(blake2b(shingle.encode(), digest_size=8).digest(), "little")


def simhash(text: str) -> int:
    """Return the 64-bit SimHash of ``text`` as a signed integer.

    0 for a text with no letters or digits. Pure and stable: the same text
    gives the same value in every process.
    """
    (value,) = simhash_many([text])
    return value


def simhash_many(texts: Sequence[str]) -> list[int]:
    """Return :func:`simhash` of each text, in one vectorised pass.

    The score stage calls this once per batch: numpy's per-call overhead is
    paid once rather than per post.
    """
    hashes: list[int] = []
    starts: list[int] = []
    for text in texts:
        starts.append(len(hashes))
        core = fingerprint_text(text)
        if len(core) <= SHINGLE_CHARS:
            shingles = [core] if core else []
        else:
            # Every occurrence votes: a shingle's weight is its frequency.
            shingles = [
                core[i : i + SHINGLE_CHARS]
                for i in range(len(core) - SHINGLE_CHARS + 1)
            ]
        hashes.extend(map(_shingle_hash, shingles))
    if not hashes:
        return [0] * len(texts)
    bits = np.unpackbits(
        np.array(hashes, dtype="<u8").view(np.uint8).reshape(-1, 8), axis=1
    )
    # reduceat needs in-range starts; an empty text's row is ignored below.
    ends = [*starts[1:], len(hashes)]
    clipped = np.minimum(np.array(starts), len(hashes) - 1)
    ones = np.add.reduceat(bits, clipped, axis=0, dtype=np.int32)
    counts = np.array(ends) - np.array(starts)
    packed = np.packbits(ones * 2 > counts[:, None], axis=1).view("<u8")[:, 0]
    return [
        (_signed(value) if count else 0)
        for value, count in zip(packed.tolist(), counts.tolist(), strict=True)
    ]


def _signed(value: int) -> int:
    return value - (1 << 64) if value >= 1 << 63 else value


def hamming(a: int, b: int) -> int:
    """Count the differing bits between two 64-bit fingerprints (0-64).

    Accepts signed or unsigned forms of the same fingerprint alike.
    """
    return ((a ^ b) & _MASK).bit_count()


def group_near_duplicates(
    items: Sequence[_T],
    fingerprint: Callable[[_T], int | None],
    k: int = DEFAULT_MAX_DISTANCE,
) -> list[list[_T]]:
    """Group ``items`` whose fingerprints are within ``k`` bits, in order.

    Greedy and order-preserving: each item joins the first group whose
    representative (its first item) is within ``k``; else it starts a group.
    The groups come in the order of their representatives, and the items of a
    group in their input order. An item whose fingerprint is ``None`` (too
    little text to judge) is a group of its own. Quadratic in the number of
    groups: meant for evidence lists (tens of items), not the whole stream.
    """
    groups: list[list[_T]] = []
    heads: list[int | None] = []
    for item in items:
        value = fingerprint(item)
        for index, head in enumerate(heads):
            if value is not None and head is not None and hamming(value, head) <= k:
                groups[index].append(item)
                break
        else:
            heads.append(value)
            groups.append([item])
    return groups
