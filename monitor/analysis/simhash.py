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
from hashlib import blake2b
from typing import TypeVar

import numpy as np
import numpy.typing as npt

IntArray = npt.NDArray[np.int64]

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
    if "@" not in text:
        # Neither a reply nor a chain link can match: the chain split would
        # give the text back whole (or nothing, which keeps it too).
        return _NOT_ALNUM.sub("", _REPOST_FILLER.sub(" ", text).lower())
    text = _REPOST_FILLER.sub(" ", _REPLY_TO.sub(" ", text))
    links = [link for link in _CHAIN_LINK.split(text) if _has_content(link)]
    if links:
        text = links[-1]
    return _NOT_ALNUM.sub("", text.lower())


def _has_content(text: str) -> bool:
    return any(char.isalnum() for char in text)


def _shingle_hash(shingle: str) -> int:
    return int.from_bytes(blake2b(shingle.encode(), digest_size=8).digest(), "little")


# A shingle as one int: its (up to 3) code points, 21 bits each, first
# character highest. No character of a fingerprint text is U+0000 (it is not
# alphanumeric), so a shorter shingle, zero-padded, is no other shingle.
_CODE_BITS = 21
_CODE_MASK = (1 << _CODE_BITS) - 1
# Kept shingle hashes, at most this many (then the cache starts over).
_CACHE_SHINGLES = 1 << 17


def _shingle_of(key: int) -> str:
    second, third = (key >> _CODE_BITS) & _CODE_MASK, key & _CODE_MASK
    shingle = chr(key >> 2 * _CODE_BITS)
    if second:
        shingle += chr(second)
        if third:
            shingle += chr(third)
    return shingle


class _ShingleHashes(dict[int, int]):
    """Shingle key -> :func:`_shingle_hash`; a miss is hashed and kept."""

    def __missing__(self, key: int) -> int:
        value = _shingle_hash(_shingle_of(key))
        if len(self) >= _CACHE_SHINGLES:
            self.clear()
        self[key] = value
        return value


_HASHES = _ShingleHashes()


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
    paid once rather than per post. Shingles are cut and keyed in numpy
    (code points, see ``_shingle_of``); only their hashes are looked up one
    by one, in a dict.
    """
    cores = [fingerprint_text(text) for text in texts]
    lengths = np.fromiter(map(len, cores), dtype=np.int64, count=len(cores))
    # Every 3-gram of a longer text; a text of 1 to 3 characters is one shingle.
    counts = np.where(lengths > SHINGLE_CHARS, lengths - SHINGLE_CHARS + 1, lengths > 0)
    total = int(counts.sum())
    if not total:
        return [0] * len(texts)
    codes = np.zeros(int(lengths.sum()) + SHINGLE_CHARS - 1, dtype=np.int64)
    codes[: len(codes) - SHINGLE_CHARS + 1] = np.frombuffer(
        "".join(cores).encode("utf-32-le"), dtype=np.uint32
    )
    keys = (codes[:-2] << 2 * _CODE_BITS) | (codes[1:-1] << _CODE_BITS) | codes[2:]
    ends = np.cumsum(counts)
    starts_at = ends - counts
    text_starts = np.cumsum(lengths) - lengths
    at = np.arange(total, dtype=np.int64) + np.repeat(text_starts - starts_at, counts)
    keys = keys[at]
    short = np.flatnonzero((lengths > 0) & (lengths < SHINGLE_CHARS))
    if len(short):
        # Zero the code points past a short text's end (the next text's).
        drop = (SHINGLE_CHARS - lengths[short]) * _CODE_BITS
        keys[starts_at[short]] &= ~((1 << drop) - 1)
    hashes = np.fromiter(
        map(_HASHES.__getitem__, keys.tolist()), dtype=np.uint64, count=total
    )
    # reduceat needs in-range starts; an empty text's row is ignored below.
    clipped = np.minimum(starts_at, total - 1)
    ones = _bit_counts(hashes, clipped, int(counts.max()))
    packed = np.packbits(ones * 2 > counts[:, None], axis=1, bitorder="little")
    packed = packed.view("<u8")[:, 0]
    return [
        (_signed(value) if count else 0)
        for value, count in zip(packed.tolist(), counts.tolist(), strict=True)
    ]


# Bit k + 16 j of a hash, for j = 0..3, in the 16-bit lane j of word k.
_LANES = 16
_LANE_MASK = np.uint64(0x0001_0001_0001_0001)
_LANE_MAX = 0xFFFF


def _bit_counts(
    hashes: npt.NDArray[np.uint64], starts: IntArray, longest: int
) -> IntArray:
    """How many hashes of each segment have each bit set (column = bit, LSB first).

    Segment i is ``hashes[starts[i]:starts[i + 1]]`` as ``np.add.reduceat``
    cuts it. Each hash is spread over 16 words, a bit to a 16-bit lane, and
    the words summed: 16 contiguous sums instead of 64 bit columns, exact
    while no segment has more than 65,535 hashes (``longest``).
    """
    if longest > _LANE_MAX:
        octets = hashes.astype("<u8").view(np.uint8).reshape(-1, 8)
        bits = np.unpackbits(octets, axis=1, bitorder="little")
        return np.add.reduceat(bits, starts, axis=0, dtype=np.int64)
    lanes = np.empty((_LANES, len(hashes)), dtype=np.uint64)
    for k in range(_LANES):
        np.bitwise_and(hashes >> np.uint64(k), _LANE_MASK, out=lanes[k])
    sums = np.add.reduceat(lanes, starts, axis=1)
    shifts = np.arange(0, 64, _LANES, dtype=np.uint64)
    # (word k, segment, lane j) -> (segment, j, k): bit k + 16 j.
    per_lane = (sums[:, :, None] >> shifts) & np.uint64(_LANE_MAX)
    return per_lane.transpose(1, 2, 0).reshape(len(starts), 64).astype(np.int64)


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
