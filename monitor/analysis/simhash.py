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
from collections import Counter
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
    return "".join(char for char in text.lower() if char.isalnum())


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
    core = fingerprint_text(text)
    if not core:
        return 0
    if len(core) <= SHINGLE_CHARS:
        shingles = Counter([core])
    else:
        shingles = Counter(
            core[i : i + SHINGLE_CHARS] for i in range(len(core) - SHINGLE_CHARS + 1)
        )
    hashes = np.fromiter(
        (_shingle_hash(s) for s in shingles), dtype="<u8", count=len(shingles)
    )
    weights = np.fromiter(shingles.values(), dtype=np.int64, count=len(shingles))
    bits = np.unpackbits(hashes.view(np.uint8).reshape(-1, 8), axis=1)
    votes = weights @ (bits.astype(np.int64) * 2 - 1)
    value = int(np.packbits(votes > 0).view("<u8")[0])
    return value - (1 << 64) if value >= 1 << 63 else value


def hamming(a: int, b: int) -> int:
    """Count the differing bits between two 64-bit fingerprints (0-64).

    Accepts signed or unsigned forms of the same fingerprint alike.
    """
    return ((a ^ b) & _MASK).bit_count()


def group_near_duplicates(
    items: Sequence[_T],
    fingerprint: Callable[[_T], int],
    k: int = DEFAULT_MAX_DISTANCE,
) -> list[list[_T]]:
    """Group ``items`` whose fingerprints are within ``k`` bits, in order.

    Greedy and order-preserving: each item joins the first group whose
    representative (its first item) is within ``k``; else it starts a group.
    The groups come in the order of their representatives, and the items of a
    group in their input order. Quadratic in the number of groups: meant for
    evidence lists (tens of items), not for the whole stream.
    """
    groups: list[list[_T]] = []
    heads: list[int] = []
    for item in items:
        value = fingerprint(item)
        for index, head in enumerate(heads):
            if hamming(value, head) <= k:
                groups[index].append(item)
                break
        else:
            heads.append(value)
            groups.append([item])
    return groups
