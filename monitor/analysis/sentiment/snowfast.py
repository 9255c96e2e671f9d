"""A batched, bit-identical re-implementation of snownlp's sentiment scorer.

``SnowNLP(text).sentiments`` spends about 98% of its time in the
character-based generative tagger of ``snownlp.seg.y09_2047``, which
recomputes dictionary look-ups and ``math.log`` for every character, every
tag and every predecessor state. :class:`FastSnowNLP` loads the same model
files, precomputes every log-probability the tagger can ever ask for (with
the same floating-point expressions, evaluated once at load), and runs the
Viterbi search for a whole batch of texts at once with numpy. Sums, maxima
and tie-breaks follow snownlp's order of operations, so words, sentiment
probabilities and TextRank keywords are identical to stock snownlp's, not
merely close.

API:

- ``FastSnowNLP(models)``: ``models`` is a :class:`SnowNLPModels`, the
  contents of snownlp's model files as plain data; :mod:`monitor.config.models`
  reads them (snownlp's own or models trained and saved with snownlp's API).
  Without ``models``, snownlp's own are asked of the reader installed with
  :func:`use_model_reader` (``monitor.config.models`` installs its reader).
- ``segment(text)`` / ``segment_many(texts)``: ``SnowNLP(text).words``.
- ``sentiments(texts)``: ``[SnowNLP(t).sentiments for t in texts]``.
- ``analyse(text, keyword_limit)`` / ``analyse_many(texts, keyword_limit)``:
  sentiment, ``SnowNLP(text).keywords(limit)`` and words from one tagging
  (the keywords' TextRank runs in :mod:`monitor.analysis.sentiment.keywords`).
- ``default_scorer()``: the shared instance of snownlp's own models, built
  once; ``score_texts(texts)``: its ``sentiments``.

Edge cases behave as in stock snownlp: punctuation, Latin, digits, emoji and
CJK outside U+4E00..U+9FA5 become whitespace-split tokens, traditional
characters are scored unconverted, characters the model never saw take
snownlp's unseen-character path. The empty string, which stock cannot score
(``ZeroDivisionError``), raises :class:`EmptyTextError` (a ``ValueError``
and a ``ZeroDivisionError``) before anything in the batch is scored.

Speed comes from batching: per call there is a fixed numpy cost per
character position of the longest Chinese run, so pass tens to thousands of
texts per call (``benchmarks/bench_scorer.py`` measures both). Model loading
takes several seconds, mostly unmarshalling snownlp's files.

This module does no file I/O (analysis is pure): the model
files are read by :mod:`monitor.config.models`, which passes their contents
in, so importing this module does not import snownlp or load any model.
"""

from __future__ import annotations

import bisect
import math
import re
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from itertools import chain, islice, repeat
from typing import Any

import numpy as np
import numpy.typing as npt

from monitor.analysis.sentiment.intindex import IntIndex
from monitor.analysis.sentiment.keywords import PartWords, rank_keywords, split_words
from monitor.errors import MonitorError

__all__ = [
    "EmptyTextError",
    "FastSnowNLP",
    "IntIndex",
    "NaiveBayes",
    "ModelReader",
    "SnowNLPModels",
    "TextAnalysis",
    "default_scorer",
    "score_texts",
    "use_model_reader",
]

# snownlp's own Chinese-run pattern (seg/__init__.py and normal/__init__.py).
_RE_ZH = re.compile("([\u4e00-\u9fa5]+)")

_CJK_FIRST = 0x4E00
_CJK_LAST = 0x9FA5
_BOS = ("", "BOS")
# Texts are tagged in chunks of about this many characters, which bounds the
# (characters x 64) log-probability arrays to a few tens of megabytes.
_CHUNK_CHARS = 40_000
# Below this many runs side by side, argmax/max along the last axis (two
# calls) beats the elementwise comparisons (ten calls, but faster per row).
_NARROW = 32
# Batches of fewer texts, and word positions fewer texts reach, are summed in
# Python by NaiveBayes.positive_probabilities (numpy's cost per call is more).
_BAYES_MIN_TEXTS = 16
# The Viterbi search builds its log-probabilities for about this many
# positions at a time (512 bytes each).
_LP_BLOCK = 16384

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


class EmptyTextError(MonitorError, ValueError, ZeroDivisionError):
    """An empty string was given where snownlp cannot score it.

    Stock ``SnowNLP("")`` raises ``ZeroDivisionError`` (its BM25 index divides
    by the number of characters). This error subclasses both ``ValueError``
    and ``ZeroDivisionError`` so code written against either keeps working.

    Attributes:
        index: Position of the empty text in the batch that was passed.

    """

    def __init__(self, index: int) -> None:
        self.index = index
        super().__init__(f"text at index {index} is empty; snownlp cannot score it")


@dataclass(frozen=True)
class TextAnalysis:
    """Sentiment and keywords of one text, from a single segmentation.

    Attributes:
        positive_probability: ``SnowNLP(text).sentiments``, in [0.0, 1.0].
        keywords: ``SnowNLP(text).keywords(limit)``, best first.
        words: ``SnowNLP(text).words``.

    """

    positive_probability: float
    keywords: list[str]
    words: list[str]


@dataclass(frozen=True)
class SnowNLPModels:
    """The contents of snownlp's three model files, as plain data.

    Read by :mod:`monitor.config.models`; nothing here touches a file.
    :class:`FastSnowNLP` builds its tables from them and keeps no reference.

    Attributes:
        segmenter: The unmarshalled ``seg.marshal`` of a
            ``snownlp.seg.seg.Seg`` (keys ``status``, ``l1``-``l3``, ``uni``,
            ``bi``, ``tri``).
        classifier: The unmarshalled ``sentiment.marshal`` of a
            ``snownlp.classification.bayes.Bayes`` (keys ``d``, ``total``).
        stopwords: snownlp's stop words, one per line of its file, stripped.

    """

    segmenter: Mapping[str, Any]
    classifier: Mapping[str, Any]
    stopwords: frozenset[str]


#: Returns snownlp's own models; installed by the loader, see use_model_reader.
ModelReader = Callable[[], SnowNLPModels]

_read_default_models: ModelReader | None = None


def use_model_reader(read: ModelReader) -> None:
    """Install the reader of snownlp's own models, used when none are passed.

    :mod:`monitor.config.models` installs its reader when it is imported;
    this module never reads a file itself.

    Args:
        read: Returns snownlp's own models (called once per
            ``FastSnowNLP()`` without models; :func:`default_scorer` builds
            its instance once).

    """
    global _read_default_models
    _read_default_models = read


def _default_models() -> SnowNLPModels:
    if _read_default_models is None:
        raise MonitorError(
            "no reader of snownlp's model files is installed: import "
            "monitor.config.models (it installs one) or pass SnowNLPModels"
        )
    return _read_default_models()


def _log_or_minus_inf(values: FloatArray) -> FloatArray:
    """``math.log`` of each value, ``-inf`` for 0 (as ``y09_2047.log_prob``)."""
    # math.log, not np.log: numpy's SIMD log may differ from libm's in the last
    # bit, and snownlp calls math.log.
    out = np.full(len(values), -math.inf)
    nz = np.flatnonzero(values)
    out[nz] = np.fromiter(map(math.log, values[nz].tolist()), np.float64, len(nz))
    return out


def _div(numerator: FloatArray, denominator: FloatArray) -> FloatArray:
    """Elementwise ``y09_2047.div``: 0 where the denominator is 0."""
    out = np.zeros_like(numerator)
    np.divide(numerator, denominator, out=out, where=denominator != 0)
    return out


def _expand(
    ptr: IntArray, groups: IntArray, owners: IntArray
) -> tuple[IntArray, IntArray]:
    """Expand CSR groups into (owner, entry index) pairs.

    Args:
        ptr: CSR offsets, entries of group g are ptr[g]:ptr[g + 1].
        groups: Group of each owner.
        owners: The owner of each group look-up.

    Returns:
        For every entry of every looked-up group, its owner and entry index.

    """
    starts = ptr[groups]
    counts = ptr[groups + 1] - starts
    total = int(counts.sum())
    if total == len(groups):
        return owners, starts
    rep_owner = np.repeat(owners, counts)
    first = np.cumsum(counts) - counts
    entry = np.arange(total, dtype=np.int64) + np.repeat(starts - first, counts)
    return rep_owner, entry


def _csr(
    keys: IntArray, *columns: npt.NDArray[Any]
) -> tuple[IntIndex, IntArray, list[npt.NDArray[Any]]]:
    """Group rows by key: an index of the unique keys, CSR offsets, columns."""
    order = np.argsort(keys, kind="stable")
    sorted_keys = keys[order]
    unique, starts = np.unique(sorted_keys, return_index=True)
    ptr = np.append(starts, len(sorted_keys)).astype(np.int64)
    return IntIndex(unique.astype(np.int64)), ptr, [c[order] for c in columns]


class _Tagger:
    """Precomputed tables of snownlp's ``CharacterBasedGenerativeModel``.

    Characters of the CJK range U+4E00..U+9FA5 (the only ones snownlp tags)
    get ids 0..n-1; ``bos`` stands for snownlp's ``('', 'BOS')`` context and
    ``unseen`` for every character the model has no counts for. The
    log-probability of tag ``t0`` for character ``c0`` after ``(c1, t1)`` and
    ``(c2, t2)`` is, as in ``y09_2047.log_prob``, ``log(uni + bi + tri)``;
    ``bi`` and ``tri`` are exactly 0 unless the tagged bigram or trigram was
    seen in training, so it is stored as a per-character base value overlaid
    by sparse bigram and trigram entries.
    """

    def __init__(self, model: Mapping[str, Any]) -> None:
        self.status: tuple[str, ...] = tuple(model["status"])
        n_tags = len(self.status)
        self.n_tags = n_tags
        tag_id = {t: i for i, t in enumerate(self.status)}
        l1, l2, l3 = float(model["l1"]), float(model["l2"]), float(model["l3"])
        uni_d: dict[Any, int] = model["uni"]["d"]
        bi_d: dict[Any, int] = model["bi"]["d"]
        tri_d: dict[Any, int] = model["tri"]["d"]
        uni_total = model["uni"]["total"]

        char_id = np.full(_CJK_LAST - _CJK_FIRST + 1, -1, dtype=np.int64)
        n_chars = 0
        # Unit = char id * n_tags + tag: -2 for ('', 'BOS'), -1 for what the
        # tagger can never ask about (other scripts, words, unknown tags).
        units: dict[Any, int] = {_BOS: -2}

        def new_unit(key: Any) -> int:
            nonlocal n_chars
            char, tag = key
            t = tag_id.get(tag)
            offset = ord(char) - _CJK_FIRST if len(char) == 1 else -1
            if t is None or not 0 <= offset <= _CJK_LAST - _CJK_FIRST:
                units[key] = -1
                return -1
            cid = int(char_id[offset])
            if cid < 0:
                cid = n_chars
                char_id[offset] = cid
                n_chars += 1
            units[key] = cid * n_tags + t
            return cid * n_tags + t

        def unit_array(keys: list[Any]) -> IntArray:
            get = units.get
            flat = [get(k, -3) for k in keys]
            for i, u in enumerate(flat):
                if u == -3:
                    flat[i] = get(keys[i], -3)
                    if flat[i] == -3:
                        flat[i] = new_unit(keys[i])
            return np.array(flat, dtype=np.int64)

        uni_units = unit_array(list(uni_d))
        uni_counts = np.array(list(uni_d.values()), dtype=np.float64)
        bi_units = unit_array([u for key in bi_d for u in key])
        tri_units = unit_array([u for key in tri_d for u in key])
        bos = n_chars
        unseen = n_chars + 1
        n_ids = n_chars + 2
        self.bos, self.unseen, self.n_ids = bos, unseen, n_ids
        bos_unit = bos * n_tags  # ('', 'BOS') behaves as tag 0 of the bos id

        def fix(u: IntArray) -> IntArray:
            return np.where(u == -2, bos_unit, u)

        uni_units = fix(uni_units)
        n_units = n_ids * n_tags
        uni_count = np.zeros(n_units, dtype=np.float64)
        ok = uni_units >= 0
        uni_count[uni_units[ok]] = uni_counts[ok]
        # Stock uni.freq(s3) and the "not_found" test use float(count) / total.
        uni_freq = uni_count / uni_total
        uni_term = l1 * uni_freq
        self.char_id = np.where(char_id < 0, unseen, char_id)
        self.seen = (uni_freq.reshape(n_ids, n_tags) != 0).any(axis=1)
        self.seen[bos] = True
        self.seen[unseen] = False
        base = np.where(uni_term != 0, 0.0, -math.inf)
        nz = np.flatnonzero(uni_term)
        base[nz] = _log_or_minus_inf(uni_term[nz])
        self.base = base.reshape(n_ids, n_tags)
        #: base[c, t0] repeated for every (t1, t2), row by row (log_probs).
        self.base_rows = np.repeat(self.base, n_tags * n_tags, axis=1)
        #: base[c, t0] as base_by_tag[t0, c], for positions-last tensors.
        self.base_by_tag = np.ascontiguousarray(self.base.T)

        bi_arr = fix(bi_units.reshape(-1, 2))
        bi_cnt = np.array(list(bi_d.values()), dtype=np.float64)
        keep = (bi_arr >= 0).all(axis=1)
        bi_arr, bi_cnt = bi_arr[keep], bi_cnt[keep]
        # Full tagged-bigram keys, for the trigram denominators below.
        full_bi = bi_arr[:, 0] * n_units + bi_arr[:, 1]
        full_bi_index = IntIndex(full_bi)

        s2, s3 = bi_arr[:, 0], bi_arr[:, 1]
        # y09_2047.log_prob with tri == 0: uni + div(l2 * bi, uni(s2)) + 0.
        bi_val = _log_or_minus_inf(uni_term[s3] + _div(l2 * bi_cnt, uni_count[s2]))
        bi_key = (s2 // n_tags) * n_ids + s3 // n_tags
        bi_combo = (s3 % n_tags) * n_tags + s2 % n_tags
        self.bi_keys, self.bi_ptr, (self.bi_combo, self.bi_val) = _csr(
            bi_key, bi_combo, bi_val
        )

        tri_arr = fix(tri_units.reshape(-1, 3))
        tri_cnt = np.array(list(tri_d.values()), dtype=np.float64)
        keep = (tri_arr >= 0).all(axis=1)
        tri_arr, tri_cnt = tri_arr[keep], tri_cnt[keep]
        s1, s2, s3 = tri_arr[:, 0], tri_arr[:, 1], tri_arr[:, 2]

        def bi_count(a: IntArray, b: IntArray) -> FloatArray:
            out = np.zeros(len(a), dtype=np.float64)
            found, where = full_bi_index.find(a * n_units + b)
            out[found] = bi_cnt[where]
            return out

        uni = uni_term[s3]
        bi = _div(l2 * bi_count(s2, s3), uni_count[s2])
        tri = _div(l3 * tri_cnt, bi_count(s1, s2))
        tri_val = _log_or_minus_inf(uni + bi + tri)
        c1, c2 = s2 // n_tags, s1 // n_tags
        tri_key = (c2 * n_ids + c1) * n_ids + s3 // n_tags
        tri_combo = ((s3 % n_tags) * n_tags + s2 % n_tags) * n_tags + s1 % n_tags
        self.tri_keys, self.tri_ptr, (self.tri_combo, self.tri_val) = _csr(
            tri_key, tri_combo, tri_val
        )
        # The tags of each entry, for the tensors of _log_probs_runs_last.
        self.bi_t0, self.bi_t1 = self.bi_combo // n_tags, self.bi_combo % n_tags
        self.tri_t0 = self.tri_combo // (n_tags * n_tags)
        self.tri_t1 = self.tri_combo // n_tags % n_tags
        self.tri_t2 = self.tri_combo % n_tags
        is_e = np.array([t == "e" for t in self.status])
        is_bs = np.array([t in ("b", "s") for t in self.status])
        self.is_e, self.is_bs = is_e, is_bs

    def ids(self, chars: str) -> IntArray:
        """Map a string of CJK-range characters to character ids."""
        codes = np.frombuffer(chars.encode("utf-32-le"), dtype=np.uint32)
        return self.char_id[codes.astype(np.int64) - _CJK_FIRST]

    def log_probs(self, c2: IntArray, c1: IntArray, c0: IntArray) -> FloatArray:
        """Log-probability tensors, one per position.

        Args:
            c2: Character ids two positions back (``bos`` at a run start).
            c1: Character ids one position back.
            c0: Character ids at the positions.

        Returns:
            Array of shape (n, t0, t1, t2): log P(c0/t0 | c1/t1, c2/t2).

        """
        n, s = len(c0), self.n_tags
        # Whole rows of the base repeated over (t1, t2): one gather, several
        # times faster than broadcasting base[c0] into the tensor.
        out = np.take(self.base_rows, c0, axis=0).reshape(n, s, s, s)
        found, group = self.bi_keys.find(c1 * self.n_ids + c0)
        if len(found):
            owner, entry = _expand(self.bi_ptr, group, found)
            flat = out.reshape(n * s * s, s)
            flat[owner * (s * s) + self.bi_combo[entry]] = self.bi_val[entry][:, None]
        found, group = self.tri_keys.find((c2 * self.n_ids + c1) * self.n_ids + c0)
        if len(found):
            owner, entry = _expand(self.tri_ptr, group, found)
            out.reshape(n, s**3)[owner, self.tri_combo[entry]] = self.tri_val[entry]
        return out

    def _log_probs_runs_last(
        self, c2: IntArray, c1: IntArray, c0: IntArray, buffer: FloatArray
    ) -> FloatArray:
        """:meth:`log_probs` laid out (t2, t1, t0, n), as :meth:`tag_runs` reads it.

        Positions are the last axis, so that each Viterbi step's arithmetic
        runs over contiguous rows of runs. The result is a view of the start
        of ``buffer`` (flat, at least 64 n values), so that the blocks of a
        batch reuse memory already mapped and cached.
        """
        n, s = len(c0), self.n_tags
        out = buffer[: s * s * s * n].reshape(s, s, s, n)
        out[...] = np.take(self.base_by_tag, c0, axis=1)
        found, group = self.bi_keys.find(c1 * self.n_ids + c0)
        if len(found):
            owner, entry = _expand(self.bi_ptr, group, found)
            cell = (self.bi_t1[entry] * s + self.bi_t0[entry]) * n + owner
            out.reshape(s, s * s * n)[:, cell] = self.bi_val[entry]
        found, group = self.tri_keys.find((c2 * self.n_ids + c1) * self.n_ids + c0)
        if len(found):
            owner, entry = _expand(self.tri_ptr, group, found)
            cell = (
                (self.tri_t2[entry] * s + self.tri_t1[entry]) * s + self.tri_t0[entry]
            ) * n + owner
            out.reshape(-1)[cell] = self.tri_val[entry]
        return out

    def tag_runs(self, runs: Sequence[str]) -> npt.NDArray[np.int64]:
        """Viterbi-tag many runs of CJK characters at once.

        Reproduces ``CharacterBasedGenerativeModel.tag``. The state after
        character j is the tag pair (t[j], t[j-1]) and scores are kept as
        ``score[t[j-1], t[j], run]``; snownlp's list order of states is
        ``[run, t[j], t[j-1]]``. Among predecessors t[j-2] with equal scores
        the first wins (snownlp replaces only on a strict ``>``), except at a
        character the model never saw: there snownlp adds no log-probability
        and its plain dict assignment lets the last predecessor win.

        Args:
            runs: Non-empty strings of characters in U+4E00..U+9FA5.

        Returns:
            The tag index of every character, runs concatenated in order.

        """
        s = self.n_tags
        lengths = np.fromiter(map(len, runs), dtype=np.int64, count=len(runs))
        ids = self.ids("".join(runs))
        starts = np.cumsum(lengths) - lengths
        # Longest runs first, so the runs still going at step j are a prefix.
        order = np.argsort(-lengths, kind="stable")
        sorted_starts, sorted_len = starts[order], lengths[order]
        max_len = int(sorted_len[0])
        active = np.searchsorted(-sorted_len, -np.arange(max_len + 1), side="left")
        offsets = np.concatenate(([0], np.cumsum(active)))
        # Positions in step-major order: step j of every run still going.
        pos = np.concatenate([sorted_starts[: active[j]] + j for j in range(max_len)])
        step = np.repeat(np.arange(max_len, dtype=np.int64), active[:max_len])
        c0 = ids[pos]
        c1 = np.where(step >= 1, ids[np.maximum(pos - 1, 0)], self.bos)
        c2 = np.where(step >= 2, ids[np.maximum(pos - 2, 0)], self.bos)
        unseen = ~self.seen[c0]
        # Where each step's positions (and unseen characters) start.
        bounds = offsets.tolist()
        counts = active.tolist()
        unseen_at = np.flatnonzero(unseen)
        unseen_bounds = np.searchsorted(unseen_at, offsets).tolist()
        # lp[t2, t1, t0, position] for a block of steps at a time (positions
        # lp_from to lp_to): a few megabytes, reused, instead of 512 bytes
        # per position at once.
        buffer = np.empty(s**3 * min(len(pos), max(_LP_BLOCK, counts[0])))
        lp_from = lp_to = 0
        lp = buffer[:0].reshape(s, s, s, 0)

        def log_probs_at(j: int) -> FloatArray:
            """Return lp of step j's positions, [t2, t1, t0, run]."""
            nonlocal lp, lp_from, lp_to
            if bounds[j + 1] > lp_to:
                lp_from = bounds[j]
                last = max(bisect.bisect_right(bounds, lp_from + _LP_BLOCK) - 1, j + 1)
                lp_to = bounds[last]
                block = slice(lp_from, lp_to)
                lp = self._log_probs_runs_last(c2[block], c1[block], c0[block], buffer)
            return lp[..., bounds[j] - lp_from : bounds[j + 1] - lp_from]

        # final[r] = (t[last], t[last - 1]) of the best end state of run r.
        final = np.zeros((len(runs), 2), dtype=np.int64)
        # backptr[t1, t0, position]: the best t[j-2] into state (t0, t1) at a
        # position of step j >= 2 (steps 0 and 1 have one predecessor).
        backptr = np.zeros((s, s, len(pos)), dtype=np.int8 if s < 128 else np.int64)
        width = counts[2] if max_len > 2 else 0
        cand = np.empty((s, s, s, width))
        below = np.empty((s, s, width), dtype=bool)
        below_next = np.empty((s, s, width), dtype=bool)
        n = counts[0]
        # Step 0: one predecessor (BOS, BOS); an unseen character scores 0.0.
        first = np.where(unseen[None, :n], 0.0, log_probs_at(0)[0, 0])
        lo = counts[1]
        final[lo:n, 0] = first[:, lo:n].argmax(axis=0)
        score = np.zeros((s, s, 0))
        if max_len > 1:
            n = lo
            sl = slice(bounds[1], bounds[1] + n)
            # Step 1: one predecessor per state, (BOS, t[0]).
            step1 = np.where(unseen[None, None, sl], 0.0, log_probs_at(1)[0, :, :, :n])
            score = first[:, None, :n] + step1
            self._finish(final, score, counts[2])
        for j in range(2, max_len):
            n = counts[j]
            at = bounds[j]
            # prev[t2, t1, run]: the best score of each state (t1, t2) so far;
            # paths[t2, t1, t0, run]: through t2 (t[j-2]) into (t1, t0).
            prev = score[:, :, :n]
            paths = np.add(log_probs_at(j), prev[:, :, None, :], out=cand[..., :n])
            best = paths.max(axis=0)
            bp = backptr[..., at : at + n]
            if n < _NARROW:
                # argmax returns the first maximum, as snownlp's strict ">".
                bp[...] = paths.argmax(axis=0)
            else:
                # The first maximum: count the paths below it before it
                # (argmax along the first axis costs a call per state).
                lower = np.less(paths[0], best, out=below[..., :n])
                np.copyto(bp, lower)
                for t2 in range(1, s - 1):
                    lower &= np.less(paths[t2], best, out=below_next[..., :n])
                    bp += lower
            if unseen_bounds[j + 1] > unseen_bounds[j]:
                rows = unseen_at[unseen_bounds[j] : unseen_bounds[j + 1]] - at
                best[:, :, rows] = prev[s - 1][:, None, rows]
                bp[:, :, rows] = s - 1
            score = best
            if counts[j + 1] < n:
                self._finish(final, score, counts[j + 1])

        tags_step = np.zeros(len(pos), dtype=np.int64)
        cur, prev_tag = final[:, 0].copy(), final[:, 1].copy()
        every = np.arange(counts[0], dtype=np.int64)
        for j in range(max_len - 1, -1, -1):
            n = counts[j]
            tags_step[bounds[j] : bounds[j] + n] = cur[:n]
            if j >= 2:
                before = backptr[prev_tag[:n], cur[:n], every[:n] + bounds[j]]
                cur[:n], prev_tag[:n] = prev_tag[:n], before
            elif j == 1:
                cur[:n] = prev_tag[:n]
        tags = np.empty(len(ids), dtype=np.int64)
        tags[pos] = tags_step
        return tags

    def _finish(self, final: IntArray, score: FloatArray, lo: int) -> None:
        """Record the best end state of the runs ending at this step.

        snownlp's ``max(now, key=...)`` returns the first maximum of its
        state list, ordered like the flattened ``score[run, t[j], t[j-1]]``
        (``score`` here is laid out ``[t[j-1], t[j], run]``).
        """
        n = score.shape[2]
        if n <= lo:
            return
        s = self.n_tags
        ending = score[:, :, lo:].transpose(2, 1, 0).reshape(n - lo, s * s)
        best = ending.argmax(axis=1)
        final[lo:n, 0] = best // s
        final[lo:n, 1] = best % s


class NaiveBayes:
    """snownlp's ``classification.bayes.Bayes`` with per-word logs cached.

    Args:
        model: The classifier data ``Bayes.save`` marshals (keys ``d``, ``total``).

    """

    def __init__(self, model: Mapping[str, Any]) -> None:
        classes: dict[str, dict[str, Any]] = model["d"]
        total = model["total"]
        self.labels: tuple[str, ...] = tuple(classes)
        self.priors = tuple(
            math.log(c["total"]) - math.log(total) for c in classes.values()
        )
        vocabulary: dict[str, None] = {}
        for c in classes.values():
            vocabulary.update(dict.fromkeys(c["d"]))
        # AddOneProb.freq: float(count or none) / total, never 0.
        self.unknown = tuple(
            math.log(float(c["none"]) / c["total"]) for c in classes.values()
        )
        self.word_logs: dict[str, tuple[float, ...]] = {
            w: tuple(
                math.log(float(c["d"].get(w, c["none"])) / c["total"])
                for c in classes.values()
            )
            for w in vocabulary
        }
        # The same logs as a table for positive_probabilities: row per word,
        # the unknown word's last.
        self._rows = {w: i for i, w in enumerate(self.word_logs)}
        self._unknown_row = len(self._rows)
        table = [*self.word_logs.values(), self.unknown]
        self._table = np.array(table, dtype=np.float64).reshape(
            len(table), len(self.labels)
        )

    def log_odds(self, words: Iterable[str]) -> float:
        """Log P(pos | words) - log P(neg | words), before normalisation.

        Unlike :meth:`positive_probability` it does not saturate at 0 or 1;
        a calibration maps it. Needs a classifier with classes ``pos`` and
        ``neg``.
        """
        logs = self.word_logs
        unknown = self.unknown
        pos = self.labels.index("pos")
        neg = self.labels.index("neg")
        total = self.priors[pos] - self.priors[neg]
        for w in words:
            found = logs.get(w, unknown)
            total += found[pos] - found[neg]
        return total

    def positive_probability(self, words: Iterable[str]) -> float:
        """``Sentiment.classify``: P(pos) from ``Bayes.classify`` of the words."""
        logs = self.word_logs
        unknown = self.unknown
        if len(self.labels) == 2:
            a, b = self.priors
            for w in words:
                la, lb = logs.get(w, unknown)
                a += la
                b += lb
            scores: Sequence[float] = (a, b)
        else:
            acc = list(self.priors)
            for w in words:
                for i, lw in enumerate(logs.get(w, unknown)):
                    acc[i] += lw
            scores = acc
        return self._probability(scores)

    def positive_probabilities(self, docs: Sequence[Sequence[str]]) -> list[float]:
        """:meth:`positive_probability` of each of many texts' words, batched.

        The log sums run in numpy one word position at a time, over every text
        still that long: each text's sums take the same values in the same
        order as in :meth:`positive_probability`, so the results are equal.
        The last positions of the longest few texts are summed in Python.
        """
        if len(self.labels) != 2 or len(docs) < _BAYES_MIN_TEXTS:
            return [self.positive_probability(words) for words in docs]
        n = len(docs)
        lengths = np.fromiter(map(len, docs), dtype=np.int64, count=n)
        flat = list(chain.from_iterable(docs))
        rows = np.fromiter(
            map(self._rows.get, flat, repeat(self._unknown_row)),
            dtype=np.int64,
            count=len(flat),
        )
        logs = self._table[rows]
        # Longest texts first, so those still summing at position j are a prefix.
        order = np.argsort(-lengths, kind="stable")
        starts = (np.cumsum(lengths) - lengths)[order]
        longer = np.bincount(lengths, minlength=1)[::-1].cumsum()[::-1]
        # longer[j]: texts with at least j words (j >= 1: still summing at j - 1).
        steps = int(np.count_nonzero(longer[1:] >= _BAYES_MIN_TEXTS))
        sums = np.empty((n, 2), dtype=np.float64)
        sums[:] = self.priors
        for j in range(steps):
            m = int(longer[j + 1])
            sums[:m] += logs[starts[:m] + j]
        out = [0.0] * n
        logs_of = self.word_logs
        unknown = self.unknown
        for text, (a, b), length in zip(
            order.tolist(), sums.tolist(), lengths[order].tolist(), strict=True
        ):
            if length > steps:
                for w in islice(docs[text], steps, None):
                    la, lb = logs_of.get(w, unknown)
                    a += la
                    b += lb
            out[text] = self._probability((a, b))
        return out

    def _probability(self, scores: Sequence[float]) -> float:
        """P(pos) from the classes' log scores, as ``Bayes.classify`` gives it."""
        ret: str | int = 0
        prob: float = 0
        for label, k in zip(self.labels, scores, strict=True):
            now: float = 0
            try:
                for other in scores:
                    now += math.exp(other - k)
                now = 1 / now
            except OverflowError:
                now = 0
            if now > prob:
                ret, prob = label, now
        return prob if ret == "pos" else 1 - prob


class FastSnowNLP:
    """snownlp's segmenter, sentiment classifier and keywords, batched.

    Results equal stock snownlp's bit for bit (see the module docstring);
    texts are processed in batches, so pass many texts per call.

    Example:
        >>> scorer = FastSnowNLP()
        >>> scorer.sentiments(["这家店很好吃", "太差了"])  # doctest: +SKIP

    """

    def __init__(self, models: SnowNLPModels | None = None) -> None:
        """Build the tables from the models' contents.

        Args:
            models: The segmenter, classifier and stop words, as
                :mod:`monitor.config.models` reads them. Default: snownlp's
                own, from the reader installed with :func:`use_model_reader`.

        Raises:
            MonitorError: If no models are passed and no reader is installed.

        """
        if models is None:
            models = _default_models()
        self._tagger = _Tagger(models.segmenter)
        self._bayes = NaiveBayes(models.classifier)
        self._stop = frozenset(models.stopwords)
        # split_words' cache of the parts between CJK runs, for these stop words.
        self._part_words: dict[str, PartWords] = {}

    @property
    def stopwords(self) -> frozenset[str]:
        """Snownlp's stop words, which the sentiment classifier drops."""
        return self._stop

    @property
    def classifier(self) -> NaiveBayes:
        """The naive Bayes sentiment classifier."""
        return self._bayes

    @property
    def tagger(self) -> _Tagger:
        """The segmenter's character tagger (``tag_runs``, ``is_bs``, ``is_e``)."""
        return self._tagger

    def segment(self, text: str) -> list[str]:
        """Split a text into words, as ``snownlp.seg.seg(text)`` does.

        Args:
            text: Any string; the empty string gives ``[]``.

        Returns:
            The words, equal to ``SnowNLP(text).words``.

        """
        return self.segment_many([text])[0]

    def segment_many(self, texts: Sequence[str]) -> list[list[str]]:
        """Segment many texts in one batched pass.

        Args:
            texts: Any strings.

        Returns:
            ``snownlp.seg.seg(t)`` for each text, in order.

        """
        out: list[list[str]] = []
        for parts, run_words in self._tag_batches(texts):
            out.append(_join_words(parts, run_words))
        return out

    def sentiments(self, texts: Sequence[str]) -> list[float]:
        """Positive-sentiment probabilities, as ``SnowNLP(t).sentiments``.

        Args:
            texts: Non-empty strings.

        Returns:
            One probability in [0.0, 1.0] per text, bit-identical to stock.

        Raises:
            EmptyTextError: If a text is ``""`` (stock raises
                ``ZeroDivisionError``); nothing is scored then.

        """
        _check_not_empty(texts)
        stop = self._stop
        classify = self._bayes.positive_probability
        return [
            classify([w for w in _join_words(parts, run_words) if w not in stop])
            for parts, run_words in self._tag_batches(texts)
        ]

    def analyse(self, text: str, keyword_limit: int = 5) -> TextAnalysis:
        """Sentiment, keywords and words of one text from one segmentation.

        Args:
            text: A non-empty string.
            keyword_limit: How many keywords, as ``SnowNLP.keywords(limit)``.

        Returns:
            The analysis; every field equals stock snownlp's.

        Raises:
            EmptyTextError: If the text is ``""``.

        """
        return self.analyse_many([text], keyword_limit)[0]

    def analyse_many(
        self, texts: Sequence[str], keyword_limit: int = 5, *, classify: bool = True
    ) -> list[TextAnalysis]:
        """Batched :meth:`analyse`.

        Args:
            texts: Non-empty strings.
            keyword_limit: How many keywords per text.
            classify: False to skip the naive Bayes sentiment (for a trained
                classifier on the words); ``positive_probability`` is NaN then.

        Returns:
            One analysis per text, in order.

        Raises:
            EmptyTextError: If a text is ``""``; nothing is analysed then.

        """
        _check_not_empty(texts)
        stop = self._stop
        words: list[list[str]] = []
        graphs: list[list[list[str]]] = []
        cache = self._part_words
        kept_words: list[list[str]] = []
        for batch, chunk_words, first_word in self._tag_chunks(texts):
            for text_words, kept, sentences in split_words(
                batch, chunk_words, first_word, stop, cache
            ):
                words.append(text_words)
                kept_words.append(kept)
                graphs.append(sentences)
        if classify:
            scores = self._bayes.positive_probabilities(kept_words)
        else:
            scores = [math.nan] * len(kept_words)
        keywords = rank_keywords(graphs, keyword_limit)
        return [
            TextAnalysis(positive_probability=p, keywords=k, words=w)
            for p, k, w in zip(scores, keywords, words, strict=True)
        ]

    def _tag_batches(
        self, texts: Sequence[str]
    ) -> Iterable[tuple[list[str], list[list[str]]]]:
        """Yield, per text, its ``re_zh.split`` parts and the words of each run."""
        for batch, words, first_word in self._tag_chunks(texts):
            i = 0
            for parts in batch:
                k = len(parts) // 2
                yield (
                    parts,
                    [words[first_word[r] : first_word[r + 1]] for r in range(i, i + k)],
                )
                i += k

    def _tag_chunks(
        self, texts: Sequence[str]
    ) -> Iterable[tuple[list[list[str]], list[str], list[int]]]:
        """Yield the texts a chunk at a time, segmented.

        Each chunk is its texts' ``re_zh.split`` parts, the words of all their
        CJK runs in order, and where each run's words start in them (one
        entry more: the end).
        """
        batch: list[list[str]] = []
        batch_chars = 0
        for text in texts:
            parts = _RE_ZH.split(text)
            batch.append(parts)
            batch_chars += len(text)
            if batch_chars >= _CHUNK_CHARS:
                yield self._tag_chunk(batch)
                batch, batch_chars = [], 0
        if batch:
            yield self._tag_chunk(batch)

    def _tag_chunk(
        self, batch: list[list[str]]
    ) -> tuple[list[list[str]], list[str], list[int]]:
        runs = [r for parts in batch for r in parts[1::2]]
        if not runs:
            return batch, [], [0]
        tagger = self._tagger
        tags = tagger.tag_runs(runs)
        joined = "".join(runs)
        n = len(joined)
        lengths = np.fromiter(map(len, runs), dtype=np.int64, count=len(runs))
        run_starts = np.cumsum(lengths) - lengths
        # A word starts at a run start, at a b/s tag, or after an e tag
        # (y09_2047's Seg.seg generator).
        begins = tagger.is_bs[tags]
        begins[1:] |= tagger.is_e[tags[:-1]]
        begins[run_starts] = True
        word_starts = np.flatnonzero(begins)
        first_word = np.searchsorted(word_starts, run_starts).tolist()
        first_word.append(len(word_starts))
        cuts = word_starts.tolist()
        cuts.append(n)
        words = list(map(joined.__getitem__, map(slice, cuts, cuts[1:])))
        return batch, words, first_word


def _join_words(parts: list[str], run_words: list[list[str]]) -> list[str]:
    """``snownlp.seg.seg`` from a text's ``re_zh.split`` parts and run words."""
    words: list[str] = []
    for i, part in enumerate(parts):
        if i % 2:
            words += run_words[i // 2]
        else:
            part = part.strip()
            if part:
                words += part.split()
    return words


def _check_not_empty(texts: Sequence[str]) -> None:
    for i, text in enumerate(texts):
        if not text:
            raise EmptyTextError(i)


_default: FastSnowNLP | None = None
_default_lock = threading.Lock()


def default_scorer() -> FastSnowNLP:
    """Return the shared instance built from snownlp's own models.

    The first call builds it from the models of the installed reader (several
    seconds, see :func:`use_model_reader`); later calls return the same
    object.
    """
    global _default
    with _default_lock:
        if _default is None:
            _default = FastSnowNLP()
        return _default


def score_texts(texts: Sequence[str]) -> list[float]:
    """``[SnowNLP(t).sentiments for t in texts]``, with the default models.

    Args:
        texts: Non-empty strings.

    Returns:
        One positive probability in [0.0, 1.0] per text.

    Raises:
        EmptyTextError: If a text is ``""``.

    """
    return default_scorer().sentiments(texts)
