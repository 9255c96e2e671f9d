"""Streaming detection of emerging terms: words that suddenly take a share.

:class:`EmergingTermDetector` finds terms with little or no history that
suddenly become frequent, from each window's counts of every term and the
window's total volume, keeping a bounded table of recently seen terms. It
needs no watch list: where :class:`~monitor.analysis.bursts.BurstDetector`
follows one known series, this one compares every counted term with its own
decayed share of past volume.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from monitor.analysis.bursts import anscombe_difference, check_count, to_utc
from monitor.errors import ConfigError, InvalidRecordError

TERM_SNAPSHOT_VERSION = 1
"""Version of :meth:`EmergingTermDetector.snapshot`."""
_HOUR = 3600.0
_DAY = 86400.0


@dataclass(frozen=True)
class EmergingTermConfig:
    """Settings of :class:`EmergingTermDetector`.

    Attributes:
        history_half_life_seconds: Half-life of each term's remembered volume
            and of the total volume (> 0).
        prior_share: Share of all posts a never-seen term is expected to take
            (0-1); sets how surprising a brand-new term is.
        min_count: A term needs at least this many posts in the window (>= 1).
        min_ratio: ... and at least this many times its expected count (>= 1).
        enter_score: Square-root (Poisson) score, in standard deviations, a
            term must reach to be flagged (> 0).
        cooldown_seconds: A flagged term is not flagged again within this time
            (>= 0).
        max_terms: Terms remembered at most; the least active are evicted
            first (>= 1).

    """

    history_half_life_seconds: float = _DAY
    prior_share: float = 1e-4
    min_count: float = 5.0
    min_ratio: float = 4.0
    enter_score: float = 5.0
    cooldown_seconds: float = 6 * _HOUR
    max_terms: int = 50_000

    def __post_init__(self) -> None:
        problems = []
        if not self.history_half_life_seconds > 0:
            problems.append("history_half_life_seconds: must be > 0")
        if not 0 < self.prior_share < 1:
            problems.append("prior_share: must be in (0, 1)")
        if not self.min_count >= 1:
            problems.append("min_count: must be >= 1")
        if not self.min_ratio >= 1:
            problems.append("min_ratio: must be >= 1")
        if not self.enter_score > 0:
            problems.append("enter_score: must be > 0")
        if not self.cooldown_seconds >= 0:
            problems.append("cooldown_seconds: must be >= 0")
        if self.max_terms < 1:
            problems.append("max_terms: must be >= 1")
        if problems:
            raise ConfigError(problems)


@dataclass(frozen=True)
class EmergingTerm:
    """A term that became frequent far beyond its (possibly empty) history.

    Attributes:
        term: The term (keyword) as counted.
        window_start: Start of the window that flagged it.
        observed_count: Posts with the term in the window.
        expected_count: Count expected from its history share (posts, > 0).
        score: Square-root (Poisson) score in standard deviations.
        history_count: The term's remembered, decayed volume before the window
            (0 for a never-seen term).

    """

    term: str
    window_start: datetime
    observed_count: float
    expected_count: float
    score: float
    history_count: float


class EmergingTermDetector:
    """Flag terms whose count jumps far above their share of past volume.

    Needs no watch list: every term counted in a window is compared with its
    own decayed history, scaled by the window's total volume, so a new word
    that suddenly takes a large share of posts stands out while a word that
    grows with overall traffic does not. Memory is bounded by
    ``max_terms``; the least active terms are evicted first.
    """

    def __init__(self, config: EmergingTermConfig | None = None) -> None:
        """Start with no history.

        Args:
            config: Settings; ``EmergingTermConfig()`` if omitted.

        """
        self.config = config or EmergingTermConfig()
        # term -> [decayed volume, seconds of last decay, seconds last flagged]
        self._terms: dict[str, list[float]] = {}
        self._total = 0.0
        self._clock: float | None = None

    def __len__(self) -> int:
        """Return the number of terms currently remembered."""
        return len(self._terms)

    def update(
        self, window_start: datetime, counts: Mapping[str, float], total: float
    ) -> list[EmergingTerm]:
        """Score one closed window's term counts, then learn from them.

        Args:
            window_start: Start of the window, timezone-aware, after the
                previous window's start.
            counts: Posts per term in the window (>= 0 each).
            total: Posts in the window, all terms together (>= the largest
                count).

        Returns:
            The emerging terms, highest score first.

        Raises:
            InvalidRecordError: On a naive or out-of-order time, a negative
                or non-finite count, or a total below a term's count.

        """
        cfg = self.config
        start = to_utc(window_start, "window_start")
        now = start.timestamp()
        if self._clock is not None and now <= self._clock:
            raise InvalidRecordError(
                f"window_start {start.isoformat()} is not after the previous window"
            )
        volume = check_count(total)
        checked = {term: check_count(value) for term, value in counts.items()}
        if checked and max(checked.values()) > volume:
            raise InvalidRecordError("a term count exceeds the window total")
        decay = 1.0 if self._clock is None else self._decay(now - self._clock)
        history_total = self._total * decay

        flagged = []
        for term, observed in checked.items():
            entry = self._terms.get(term)
            history = 0.0 if entry is None else entry[0] * self._decay(now - entry[1])
            share = (history + cfg.prior_share * 1.0) / (history_total + 1.0)
            expected = max(volume * share, 1e-9)
            root = anscombe_difference(observed, expected)
            recently = entry is not None and now - entry[2] < cfg.cooldown_seconds
            if (
                observed >= cfg.min_count
                and observed >= cfg.min_ratio * expected
                and root >= cfg.enter_score
                and not recently
            ):
                flagged.append(
                    EmergingTerm(term, start, observed, expected, root, history)
                )
            if entry is None:
                self._terms[term] = [history + observed, now, -math.inf]
            else:
                entry[0] = history + observed
                entry[1] = now
        for item in flagged:
            self._terms[item.term][2] = now
        self._total = history_total + volume
        self._clock = now
        if len(self._terms) > cfg.max_terms:
            self._evict(now)
        flagged.sort(key=lambda item: -item.score)
        return flagged

    def _decay(self, seconds: float) -> float:
        # typeshed types float ** float as Any (a negative base gives a complex).
        decay: float = 2.0 ** (-seconds / self.config.history_half_life_seconds)
        return decay

    def _evict(self, now: float) -> None:
        keep = max(1, int(self.config.max_terms * 0.9))
        # Evict in a batch down to 90 % so the sort is amortised over many
        # windows instead of running on every insertion.
        ranked = sorted(
            self._terms.items(),
            key=lambda item: item[1][0] * self._decay(now - item[1][1]),
            reverse=True,
        )
        self._terms = dict(ranked[:keep])

    def snapshot(self) -> dict[str, Any]:
        """Return the detector's state as a JSON-able dict.

        Returns:
            ``{"version", "clock", "total", "terms"}`` with
            ``terms = {term: [volume, seconds, flagged_seconds or None]}``;
            times are POSIX seconds.

        """
        return {
            "version": TERM_SNAPSHOT_VERSION,
            "clock": self._clock,
            "total": self._total,
            "terms": {
                term: [v, t, None if math.isinf(f) else f]
                for term, (v, t, f) in self._terms.items()
            },
        }

    @classmethod
    def restore(
        cls, snapshot: Mapping[str, Any], config: EmergingTermConfig | None = None
    ) -> EmergingTermDetector:
        """Rebuild a detector from :meth:`snapshot` output.

        Raises:
            InvalidRecordError: If the snapshot is malformed.

        """
        detector = cls(config)
        try:
            if snapshot["version"] != TERM_SNAPSHOT_VERSION:
                raise ValueError(f"version {snapshot['version']!r}")
            clock = snapshot["clock"]
            detector._clock = None if clock is None else float(clock)
            detector._total = float(snapshot["total"])
            detector._terms = {
                str(term): [
                    float(v),
                    float(t),
                    -math.inf if f is None else float(f),
                ]
                for term, (v, t, f) in snapshot["terms"].items()
            }
        except (KeyError, TypeError, ValueError) as exc:
            raise InvalidRecordError(f"malformed term snapshot: {exc!r}") from exc
        return detector
