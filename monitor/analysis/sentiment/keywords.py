"""snownlp's TextRank keywords for a whole batch of texts at once, in numpy.

``SnowNLP(text).keywords(limit)`` splits the text into sentences, drops stop
words, links every two words at most four words apart in a sentence and runs
``snownlp.summary.textrank.KeywordTextRank``: PageRank iterations over Python
dicts and sets until the largest change is at most 0.001 (at most 200
iterations), then a stable sort by score. :func:`rank_keywords` runs the
iterations of every text of a batch together, on one block-diagonal graph,
and returns the same keywords in the same order.

Same order means reproducing what decides ties, and that is Python's set
iteration order: a vertex's neighbours are a ``set`` of words, the dict of
scores is rebuilt each iteration in the order the neighbour sets reach its
words, and that dict order breaks the ties of the next iteration's stable
sort (which also fixes the order of the floating-point sums) and of the final
one. Set order depends on the words' string hashes, which Python salts per
process (``PYTHONHASHSEED``): stock snownlp itself orders the keywords of
most texts differently from one process to the next (of the 5,649 distinct
texts of ``samples/feed.jsonl``, between two seeds 89 % get their top ten in
another order and 25 % other words in it). So this module works out, from
each word's ``hash()``, where CPython's set puts it (``Objects/setobject.c``:
8 slots to start with, linear probes of 9 past the first, perturbed
probing, growth at three fifths full), and reads each neighbour set in slot
order: the result equals stock snownlp's in the same process, bit for bit.

The arithmetic follows ``KeywordTextRank.solve``:

- each iteration ranks the vertices of positive degree by
  ``score / degree``, ties in the previous iteration's dict order;
- ``m[j] = 1 - d`` and then ``m[j] += d / degree[k] * score[k]`` for k in
  that ranking and j in k's neighbour set (``np.add.at`` adds in index
  order, so every sum is accumulated in snownlp's order);
- the next dict order is the order in which the j were first reached;
- the result is a stable descending sort of the final scores.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Sequence
from collections.abc import Set as AbstractSet
from itertools import accumulate, chain, compress, count

import numpy as np
import numpy.typing as npt

__all__ = ["PartWords", "rank_keywords", "sentence_words", "split_words"]

# Where snownlp.normal.get_sentences cuts: line breaks, then these delimiters.
_RE_SENTENCE_END = re.compile("[\r\n，。？！；]")

# KeywordTextRank: a word is linked to the 4 before it (a queue of 5).
_REACH = 4
_DAMPING = 0.85
_MAX_ITER = 200
_MIN_DIFF = 0.001

# CPython's set (Objects/setobject.c): LINEAR_PROBES, PERTURB_SHIFT. A set
# starts with 8 slots and grows to 32 when its 5th key goes in, to 128 at its
# 19th. Sets of up to _SIMULATED keys are simulated in numpy, bigger ones
# (about 0.2 % of the words of the sample feed) are built as Python sets, and
# so are the last _FEW_SETS, where a numpy step per key costs more.
_SMALL_SLOTS = 8
_LARGE_SLOTS = 32
_GROW_AT = 5
_SIMULATED = 18
_FEW_SETS = 32
_LINEAR_PROBES = 9
_PERTURB_SHIFT = np.uint64(5)
_SLOT_BITS = np.left_shift(np.uint64(1), np.arange(_LARGE_SLOTS, dtype=np.uint64))

# Products of sort keys below this fit in an int64.
_INT_KEYS = 2**62

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]


def sentence_words(
    parts: Sequence[str], run_words: Sequence[Sequence[str]], stop: AbstractSet[str]
) -> list[list[str]]:
    """Cut a text's words into the sentences ``SnowNLP.keywords`` ranks.

    Stock snownlp splits the text into sentences and segments each one; here
    the text's own segmentation is cut instead. Line breaks and sentence
    delimiters are not CJK characters, so each run of CJK characters lies
    whole in one sentence and is segmented the same there; the other parts
    are cut at the delimiters and split at whitespace, as snownlp splits a
    sentence's non-CJK parts. Empty sentences, which snownlp drops, may be
    kept as empty lists: they link no words.

    Args:
        parts: The text split around its runs of CJK characters, as
            ``snownlp.seg`` splits it: the runs at odd positions.
        run_words: The segmenter's words of each CJK run, in order.
        stop: Stop words, dropped as ``snownlp.normal.filter_stop`` does.

    Returns:
        Per sentence, its words other than stop words.

    """
    doc: list[str] = []
    docs = [doc]
    for i, part in enumerate(parts):
        if i % 2:
            doc += [w for w in run_words[i // 2] if w not in stop]
            continue
        pieces = _RE_SENTENCE_END.split(part)
        doc += [w for w in pieces[0].split() if w not in stop]
        for piece in pieces[1:]:
            doc = [w for w in piece.split() if w not in stop]
            docs.append(doc)
    return docs


#: What a part of a text outside its CJK runs gives :func:`split_words`: its
#: words, those of them that are not stop words, and its sentence pieces'
#: words other than stop words (the first piece continues the sentence
#: before the part, each further piece starts one).
PartWords = tuple[list[str], list[str], list[str], tuple[list[str], ...]]

# Distinct parts kept in a split_words cache, at most (then it starts over);
# parts longer than this many characters are not kept.
_PART_CACHE_SIZE = 8192
_PART_CACHE_CHARS = 64


def _part_words(part: str, stop: AbstractSet[str]) -> PartWords:
    # snownlp.seg splits a non-CJK part with strip().split(), the same words
    # as split().
    words = part.split()
    pieces = _RE_SENTENCE_END.split(part)
    return (
        words,
        [w for w in words if w not in stop],
        [w for w in pieces[0].split() if w not in stop],
        tuple([w for w in piece.split() if w not in stop] for piece in pieces[1:]),
    )


def split_words(
    texts_parts: Sequence[Sequence[str]],
    words: Sequence[str],
    run_starts: Sequence[int],
    stop: AbstractSet[str],
    cache: dict[str, PartWords],
) -> list[tuple[list[str], list[str], list[list[str]]]]:
    """Per text, its words, its words other than stop words, and its sentences.

    One pass for what ``snownlp.seg`` (the words), the sentiment classifier
    (the words without stop words) and :func:`sentence_words` (the
    sentences) each take of a text: for each text, equal to
    ``_join_words(parts, run_words)``, its words not in ``stop``, and
    ``sentence_words(parts, run_words, stop)``. Stop words are dropped from
    all the texts' CJK words at once; the parts outside CJK runs are mostly
    the same few punctuation marks and spaces, so their splits are kept in
    ``cache``.

    Args:
        texts_parts: Each text split around its runs of CJK characters, the
            runs at odd positions.
        words: The segmenter's words of all the texts' runs, in order.
        run_starts: Where each run's words start in ``words``, and the end.
        stop: Stop words.
        cache: Part -> its :data:`PartWords`, for these stop words only
            (the caller keeps one per stop word set); filled here.

    Returns:
        Per text: its words, its words other than stop words, and per
        sentence its words other than stop words (fresh lists, the caller's
        to keep).

    """
    keep = [w not in stop for w in words]
    clean = list(compress(words, keep))
    # Where each run's words other than stop words start in clean.
    clean_starts = [0, *accumulate(keep)]
    clean_starts = [clean_starts[i] for i in run_starts]
    out: list[tuple[list[str], list[str], list[list[str]]]] = []
    run = 0
    for parts in texts_parts:
        text_words: list[str] = []
        kept: list[str] = []
        doc: list[str] = []
        docs = [doc]
        for i, part in enumerate(parts):
            if i % 2:
                text_words += words[run_starts[run] : run_starts[run + 1]]
                found = clean[clean_starts[run] : clean_starts[run + 1]]
                kept += found
                doc += found
                run += 1
                continue
            if not part:
                continue
            cached = cache.get(part)
            if cached is None:
                cached = _part_words(part, stop)
                if len(part) <= _PART_CACHE_CHARS:
                    if len(cache) >= _PART_CACHE_SIZE:
                        cache.clear()
                    cache[part] = cached
            part_words, part_kept, head, tail = cached
            text_words += part_words
            kept += part_kept
            doc += head
            for piece in tail:
                doc = piece.copy()
                docs.append(doc)
        out.append((text_words, kept, docs))
    return out


def rank_keywords(
    graphs: Sequence[Sequence[Sequence[str]]], limit: int
) -> list[list[str]]:
    """``KeywordTextRank(docs).top_index(limit)`` for many texts at once.

    Args:
        graphs: Per text, its sentences' stop-word-filtered words.
        limit: Keywords per text, as a slice bound (``top[:limit]``).

    Returns:
        Per text, its keywords, best first.

    """
    names, first, sentence_lengths, text_words = _intern(graphs)
    token_first = np.array(first, dtype=np.int64)
    is_word = token_first == np.arange(len(first), dtype=np.int64)
    word_of_token = (np.cumsum(is_word) - 1)[token_first]
    text = np.repeat(np.arange(len(graphs), dtype=np.int64), text_words)
    sentence = np.repeat(
        np.arange(len(sentence_lengths), dtype=np.int64), sentence_lengths
    )
    degree, added = _links(word_of_token, sentence, text)
    adjacency = _set_order(degree, added, names)
    finished, score = _iterate(degree, adjacency, text)
    return _top(names, text, finished, score, len(graphs), limit)


def _intern(
    graphs: Sequence[Sequence[Sequence[str]]],
) -> tuple[list[str], list[int], list[int], list[int]]:
    """Give each text's distinct words numbers in first-seen order (dict order).

    Returns the words of all texts, then per token the index of the first
    token of the same word in the same text, the length of each sentence,
    and how many distinct words each text has.
    """
    names: list[str] = []
    first: list[int] = []
    sentence_lengths: list[int] = []
    text_words: list[int] = []
    for docs in graphs:
        seen: dict[str, int] = {}
        first += map(seen.setdefault, chain.from_iterable(docs), count(len(first)))
        sentence_lengths += map(len, docs)
        names += seen
        text_words.append(len(seen))
    return names, first, sentence_lengths, text_words


def _links(
    word: IntArray, sentence: IntArray, text: IntArray
) -> tuple[IntArray, IntArray]:
    """Each word's neighbours, in the order they join its set.

    Args:
        word: Per token, its word.
        sentence: Per token, its sentence.
        text: Per word, its text.

    Returns:
        The degree of every word, and every word's neighbours in turn, each
        word's in the order ``KeywordTextRank`` adds them to its set.

    """
    n_words = len(text)
    # A pair of tokens (q, p), q < p <= q + 4 in one sentence, links their
    # words; snownlp adds it when p joins the queue, after the pairs of q' < q.
    lows, highs, times = [], [], []
    for lag in range(1, _REACH + 1):
        pair = sentence[lag:] == sentence[:-lag]
        pair &= word[lag:] != word[:-lag]
        later = np.flatnonzero(pair) + lag
        lows.append(word[later - lag])
        highs.append(word[later])
        times.append(later * _REACH + (_REACH - lag))
    low = np.concatenate(lows)
    high = np.concatenate(highs)
    time = np.concatenate(times)
    a, b = np.minimum(low, high), np.maximum(low, high)
    # Keep the first time of each pair of words (both words of a pair are in
    # one text, so the pair is numbered within the text's square).
    span = len(word) * _REACH
    local = b - _text_starts(text)[text[b]]
    width = int(local.max()) + 1 if len(local) else 1
    pair_key = a * width + local
    first = _sort_unique((pair_key, time), (n_words * width, span))
    pair_key = pair_key[first]
    keep = np.ones(len(first), dtype=bool)
    keep[1:] = pair_key[1:] != pair_key[:-1]
    first = first[keep]
    a, b, time = a[first], b[first], time[first]
    # Both directions; per word, its new neighbours in the order added.
    target = np.concatenate((a, b))
    order = _sort_unique((target, np.concatenate((time, time))), (n_words, span))
    degree = np.bincount(target, minlength=n_words).astype(np.int64)
    return degree, np.concatenate((b, a))[order]


def _text_starts(text: IntArray) -> IntArray:
    """Index of each text's first word (words are numbered text by text)."""
    counts = np.bincount(text)
    return np.cumsum(counts) - counts


def _sort_unique(keys: Sequence[IntArray], ranges: Sequence[int]) -> IntArray:
    """``np.lexsort(keys[::-1])`` (first key major) for distinct key tuples.

    Distinct tuples need no stable sort: one quicksort of a combined key does
    when it fits in an int64 (``ranges`` bounds each key, all non-negative).
    """
    if math.prod(ranges) < _INT_KEYS:
        combined = keys[0]
        for key, size in zip(keys[1:], ranges[1:], strict=True):
            combined = combined * size + key
        return np.argsort(combined)
    return np.lexsort(keys[::-1])


def _sort_pairs(major: IntArray, minor: IntArray) -> tuple[IntArray, int]:
    """Sort pairs of non-negative int64 keys, packed one pair to an integer.

    One numpy ``sort`` of plain int64 values (vectorised, several times
    faster than an argsort, stable or not) orders the pairs packed into one
    integer each: ``minor`` in the low bits, ``major`` above it, less its
    lowest bits where both would not fit.

    Returns:
        The minors in the order of the packed pairs, and how many low bits
        of the majors were cut (0: none): then pairs whose majors differ
        only in their cut bits are in minor order, which
        :func:`_exact_order` checks and mends.

    """
    if len(major) < 2:
        return minor.copy(), 0
    low = int(major.min())
    bits = max(1, int(minor.max()).bit_length())
    shift = max(0, (int(major.max()) - low).bit_length() - (63 - bits))
    packed = ((major - low) >> shift) << bits | minor
    packed.sort()
    return packed & ((1 << bits) - 1), shift


def _exact_order(
    items: IntArray, major: IntArray, minor: IntArray, shift: int = 0
) -> IntArray:
    """Mend :func:`_sort_pairs`' order if cut majors left pairs out of order.

    Args:
        items: Items in the order sorted.
        major: Their exact majors, in that order.
        minor: Their minors, in that order.
        shift: The bits :func:`_sort_pairs` cut, if known: then only the
            runs of items with equal cut majors are sorted again, else all.

    Returns:
        The items by (major, minor): ``items`` itself when already so.

    """
    descents = np.flatnonzero(major[1:] < major[:-1])
    if not len(descents):
        # Sorted by the cut majors, then by minor: with the exact majors
        # ascending too, equal ones are in minor order.
        return items
    if shift <= 0:
        return items[np.lexsort((minor, major))]
    # Only items of one run of equal cut majors can be out of order, and a
    # run is sorted again exactly where it descends; each keeps its place (a
    # smaller cut major is a smaller major).
    cut = (major - major.min()) >> shift
    run = np.zeros(len(items), dtype=np.int64)
    np.cumsum(cut[1:] != cut[:-1], out=run[1:])
    redo = np.zeros(int(run[-1]) + 1, dtype=bool)
    redo[run[descents]] = True
    at = np.flatnonzero(redo[run])
    out = items.copy()
    out[at] = items[at[np.lexsort((minor[at], major[at], run[at]))]]
    return out


def _set_order(
    degree: IntArray, added: IntArray, names: list[str], *, emulate: bool | None = None
) -> IntArray:
    """Each word's neighbours in the order its Python set iterates them.

    A set iterates its table's slots in order, and where a key lands depends
    on its ``hash()`` and on the keys added before it. The tables are filled
    here in numpy, one key of every set at a time; once fewer than
    ``_FEW_SETS`` sets are left (or for sets of more than ``_SIMULATED``
    keys), the rest are built as Python sets: the same keys added in the
    same order give the same table. Every set is built in Python if this
    interpreter's sets do not behave as emulated (:func:`_emulation_holds`).

    Args:
        degree: Per word, how many neighbours it has.
        added: Per word in turn, its neighbours in the order added.
        names: The words.
        emulate: True or False to emulate or not without the check.

    Returns:
        Per word in turn, its neighbours in its set's iteration order.

    """
    start = np.cumsum(degree) - degree
    room = np.where(degree < _GROW_AT, _SMALL_SLOTS, _LARGE_SLOTS)
    room[(degree == 0) | (degree > _SIMULATED)] = 0
    if not (_emulation_holds() if emulate is None else emulate):
        room[:] = 0
    base = np.cumsum(room) - room
    slots = np.full(int(room.sum()), -1, dtype=np.int64)
    hashes = np.fromiter(map(hash, names), dtype=np.int64, count=len(names))
    sets = np.flatnonzero(room)
    if len(sets):
        # Where no two keys of a set share a slot of its final table, each
        # key sits in its first slot, whatever the order and growth before.
        counts = degree[sets]
        entry = np.flatnonzero(np.repeat(room > 0, degree))
        home = hashes[added[entry]] & np.repeat(room[sets] - 1, counts)
        taken = np.bitwise_or.reduceat(_SLOT_BITS[home], np.cumsum(counts) - counts)
        apart = np.bitwise_count(taken) == counts
        spread = np.repeat(apart, counts)
        cell = np.repeat(base[sets], counts)[spread] + home[spread]
        slots[cell] = added[entry[spread]]
        sets = sets[~apart]
    rank = 0
    few = _FEW_SETS if emulate is None else 1
    while len(sets) >= few:
        key = added[start[sets] + rank]
        mask = _SMALL_SLOTS - 1 if rank < _GROW_AT else _LARGE_SLOTS - 1
        _insert(slots, base[sets], mask, key, hashes[key])
        rank += 1
        if rank == _GROW_AT:
            _grow(slots, base[sets], hashes)
        sets = sets[degree[sets] > rank]
    # The sets left over, part filled, are built in Python.
    for word in sets.tolist():
        slots[base[word] : base[word] + room[word]] = -1
    room[sets] = 0
    adjacency = np.empty(len(added), dtype=np.int64)
    adjacency[np.repeat(room > 0, degree)] = slots[slots >= 0]
    for word in np.flatnonzero((room == 0) & (degree > 0)).tolist():
        lo, hi = int(start[word]), int(start[word] + degree[word])
        keys = added[lo:hi].tolist()
        words = [names[i] for i in keys]
        index = dict(zip(words, keys, strict=True))
        adjacency[lo:hi] = [index[w] for w in set(words)]
    return adjacency


@functools.cache
def _emulation_holds() -> bool:
    """Whether the numpy tables match this interpreter's sets (checked once).

    CPython 3.7 to 3.13 build sets as emulated here; another interpreter or
    a future change would show here, and sets are then built in Python.
    """
    names = [f"check {i}" for i in range(8 * _SIMULATED)]
    n = len(names)
    degree = np.arange(n, dtype=np.int64) % _SIMULATED + 1
    added = np.concatenate(
        [(np.arange(d) + i + 1) % n for i, d in enumerate(degree.tolist())]
    ).astype(np.int64)
    return bool(
        np.array_equal(
            _set_order(degree, added, names, emulate=True),
            _set_order(degree, added, names, emulate=False),
        )
    )


def _grow(slots: IntArray, base: IntArray, hashes: IntArray) -> None:
    """``set_table_resize`` from 8 to 32 slots: re-add the keys in slot order."""
    cells = base[:, None] + np.arange(_SMALL_SLOTS, dtype=np.int64)
    table = slots[cells]
    keys = table[table >= 0].reshape(len(base), _GROW_AT)
    slots[cells] = -1
    for column in keys.T:
        _insert(slots, base, _LARGE_SLOTS - 1, column, hashes[column])


def _insert(
    slots: IntArray, base: IntArray, mask: int, key: IntArray, hashed: IntArray
) -> None:
    """Add a new key to each of several tables of ``mask + 1`` slots.

    ``set_add_entry`` and ``set_insert_clean`` probe the same sequence for a
    key that is not in the table: slot ``i = hash & mask``, then the next 9
    slots if they are all in the table, then ``perturb >>= 5`` and
    ``i = (i * 5 + 1 + perturb) & mask``; the key goes to the first empty
    slot (hashes are used as unsigned 64-bit integers, as ``size_t``).
    """
    home = hashed & mask
    cell = base + home
    free = slots[cell] < 0
    slots[cell[free]] = key[free]
    if free.all():
        return
    busy = np.flatnonzero(~free)
    if mask > _LINEAR_PROBES:
        # Most keys whose slot is taken take the next one, the first of the
        # linear probes (where those fit in the table): one gather for them.
        after = cell[busy] + 1
        took = home[busy] <= mask - _LINEAR_PROBES
        # (clip: a next slot past the last table is no linear probe anyway)
        took &= slots.take(after, mode="clip") < 0
        slots[after[took]] = key[busy[took]]
        busy = busy[~took]
        if not len(busy):
            return
    base, key = base[busy], key[busy]
    perturb = hashed[busy].view(np.uint64)
    umask, one, five = np.uint64(mask), np.uint64(1), np.uint64(5)
    i = perturb & umask
    # The rest of the sequence, a few probes at a time: the 9 slots after
    # slot i (or i again where they run past the table), then jumps.
    linear = mask > _LINEAR_PROBES
    after = np.arange(_LINEAR_PROBES + 1, dtype=np.int64)
    jump = False
    while True:
        columns = []
        for _ in range(2 if linear else 4):
            if jump:
                perturb >>= _PERTURB_SHIFT
                i = (i * five + one + perturb) & umask
            jump = True
            start = i.astype(np.int64)
            if linear:
                fits = start <= mask - _LINEAR_PROBES
                columns.append(start[:, None] + after * fits[:, None])
            else:
                columns.append(start[:, None])
        cells = base[:, None] + np.hstack(columns)
        empty = slots[cells] < 0
        hit = empty.any(axis=1)
        slots[cells[hit, empty[hit].argmax(axis=1)]] = key[hit]
        if hit.all():
            return
        miss = ~hit
        base, key, i, perturb = base[miss], key[miss], i[miss], perturb[miss]


def _iterate(
    degree: IntArray, adjacency: IntArray, text: IntArray
) -> tuple[list[IntArray], FloatArray]:
    """Run every text's PageRank iterations together.

    A text's words of positive degree are its dict's keys (words without
    neighbours drop out of snownlp's dict in the first iteration and are
    never ranked). The dict's order is kept as each word's place: where the
    iteration that built the dict first reached it (the words' numbers for
    the first dict, which is in first-seen order). Places order the words of
    one text as its dict does, which is all the next ranking's ties need.

    Returns:
        The ranked words, each text's together in its final dict order (in
        chunks, one per iteration where texts finished), and every word's
        final score.

    """
    n_words = len(degree)
    ptr = np.cumsum(degree) - degree
    positions = np.arange(len(adjacency), dtype=np.int64)
    # The words of the texts still running, in word order: each text's
    # words are consecutive, from starts on.
    active = np.flatnonzero(degree > 0)
    starts = _runs(text[active])
    score = np.ones(n_words)
    place = np.arange(n_words, dtype=np.int64)
    # The word at each place.
    at_place = place
    final = np.zeros(n_words)
    finished: list[IntArray] = []
    for _ in range(_MAX_ITER):
        if not len(active):
            break
        # Positive floats sort as their bits do, read as integers.
        before = score[active]
        key = (before / degree[active]).view(np.int64)
        places, cut = _sort_pairs(key, place[active])
        ranked = at_place[places]
        counts = degree[ranked]
        vertex = score[ranked]
        if cut:
            exact = _exact_order(ranked, (vertex / counts).view(np.int64), places, cut)
            if exact is not ranked:
                ranked = exact
                counts = degree[ranked]
                vertex = score[ranked]
        ends = np.cumsum(counts)
        n_edges = int(ends[-1])
        edge = np.repeat(ptr[ranked] - ends + counts, counts) + positions[:n_edges]
        reached = adjacency[edge]
        new = np.full(n_words, 1 - _DAMPING)
        np.add.at(new, reached, np.repeat(_DAMPING / counts * vertex, counts))
        place = np.full(n_words, n_edges, dtype=np.int64)
        np.minimum.at(place, reached, positions[:n_edges])
        at_place = reached
        largest = np.maximum.reduceat(np.abs(new[active] - before), starts)
        done = largest <= _MIN_DIFF
        if done.any():
            stop = np.repeat(done, np.diff(starts, append=len(active)))
            finished.append(reached[np.sort(place[active[stop]])])
            final[finished[-1]] = new[finished[-1]]
            active = active[~stop]
            starts = _runs(text[active])
        score = new
    finished.append(at_place[np.sort(place[active])])
    final[active] = score[active]
    return finished, final


def _runs(values: IntArray) -> IntArray:
    """Where each run of equal values starts."""
    if not len(values):
        return values
    return np.flatnonzero(np.concatenate(([True], values[1:] != values[:-1])))


def _top(
    names: list[str],
    text: IntArray,
    finished: list[IntArray],
    score: FloatArray,
    n_texts: int,
    limit: int,
) -> list[list[str]]:
    """Each text's words by descending score, ties in dict order, cut at limit."""
    ranked = np.concatenate(finished)
    # By descending score (the bits of positive floats order as they do),
    # ties in the order given, then a stable sort by text.
    bits = score[ranked].view(np.int64)
    descending = bits.max(initial=0) - bits
    at, cut = _sort_pairs(descending, np.arange(len(ranked), dtype=np.int64))
    if cut:
        at = _exact_order(at, descending[at], at, cut)
    ranked = ranked[at]
    owner = text[ranked]
    ranked = ranked[np.argsort(owner.astype(_index_type(n_texts)), kind="stable")]
    owner = text[ranked]
    per_text = np.bincount(owner, minlength=n_texts)
    group_start = np.cumsum(per_text) - per_text
    rank = np.arange(len(ranked)) - group_start[owner]
    bound = per_text + limit if limit < 0 else np.full(n_texts, limit)
    chosen = ranked[rank < bound[owner]]
    words = [names[i] for i in chosen.tolist()]
    kept = np.bincount(text[chosen], minlength=n_texts)
    cuts = np.concatenate(([0], np.cumsum(kept))).tolist()
    return [words[a:b] for a, b in zip(cuts, cuts[1:], strict=False)]


def _index_type(n: int) -> type[np.integer]:
    """Pick the smallest type for values below n (16-bit ones radix-sort)."""
    return np.uint16 if n <= 2**16 else np.int64
