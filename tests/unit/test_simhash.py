"""SimHash near-duplicate fingerprints (monitor.analysis.simhash)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from monitor.analysis.simhash import (
    DEFAULT_MAX_DISTANCE,
    fingerprint_text,
    group_near_duplicates,
    hamming,
    simhash,
)
from monitor.analysis.tickets.evidence import merge_evidence
from monitor.analysis.tickets.model import Evidence

ORIGIN = (
    "星河广场的儿童乐园今天突然关闭了，家长们在门口排了很长的队，工作人员说是设备检修"
)
K = DEFAULT_MAX_DISTANCE
int64 = st.integers(min_value=-(1 << 63), max_value=(1 << 63) - 1)


def test_a_fixed_text_has_a_fixed_fingerprint() -> None:
    assert simhash(ORIGIN) == simhash(ORIGIN)
    assert simhash(ORIGIN) == STABLE_ORIGIN


STABLE_ORIGIN = -8470387708326702697


def test_fingerprint_is_signed_64_bit_and_empty_text_is_zero() -> None:
    assert -(1 << 63) <= simhash(ORIGIN) < 1 << 63
    assert simhash("") == 0
    assert simhash("！！！ 👍") == 0


def test_repost_chains_keep_the_origin() -> None:
    assert fingerprint_text("//@a: 好 //@b: 原文") == "原文"
    assert fingerprint_text("转发微博") == ""
    assert fingerprint_text("回复@小王: 谢谢") == "谢谢"


def test_reposts_and_light_edits_are_within_k() -> None:
    copies = [
        "转发微博 //@老李: " + ORIGIN,
        "//@a: 好 //@b: " + ORIGIN,
        "真的假的//@张三：" + ORIGIN,
        ORIGIN + "👍❤️",
        ORIGIN.replace("，", " "),
        "回复@小王: " + ORIGIN + "！！",
    ]
    base = simhash(ORIGIN)
    assert all(hamming(base, simhash(copy)) <= K for copy in copies)


def test_a_changed_character_moves_a_short_text_a_few_bits() -> None:
    # Known limit: on a ~40-character post one changed character alters ~3 of
    # ~38 shingles, which moves 6-10 of 64 bits: beyond k=3. Recorded here so
    # that a change of shingling shows up.
    edits = [ORIGIN.replace("很长", "好长"), ORIGIN.replace("今天", "今日")]
    distances = [hamming(simhash(ORIGIN), simhash(edit)) for edit in edits]
    assert all(0 < d <= 12 for d in distances)


def test_unrelated_texts_of_one_topic_are_apart() -> None:
    others = [
        "星河广场的儿童乐园干净又安全，孩子玩疯了，商场的休息区沙发很多",
        "星河广场停车太难了，排队半小时才进去，保安态度也不好",
        "星河广场新开的火锅店味道一般，价格倒是不便宜",
    ]
    fingerprints = [simhash(text) for text in [ORIGIN, *others]]
    for i, a in enumerate(fingerprints):
        for b in fingerprints[i + 1 :]:
            assert hamming(a, b) > K


@given(int64, int64)
def test_hamming_is_symmetric_and_bounded(a: int, b: int) -> None:
    assert hamming(a, b) == hamming(b, a)
    assert 0 <= hamming(a, b) <= 64
    assert hamming(a, a) == 0


@given(st.text(max_size=80))
def test_simhash_never_raises_and_fits_int64(text: str) -> None:
    assert -(1 << 63) <= simhash(text) < 1 << 63


def test_groups_keep_order_and_one_head_per_group() -> None:
    other = "星河广场停车太难了，排队半小时才进去，保安态度也不好"
    texts = [ORIGIN, other, "转发微博//@x: " + ORIGIN]
    groups = group_near_duplicates(texts, simhash)
    assert groups == [[texts[0], texts[2]], [texts[1]]]


def test_evidence_keeps_one_post_per_near_duplicate_group() -> None:
    other = "星河广场停车太难了，排队半小时才进去，保安态度也不好"
    posts = [
        Evidence("big-repost", "转发微博//@x: " + ORIGIN, followers=900),
        Evidence("origin", ORIGIN, followers=100),
        Evidence("other", other, followers=50),
        Evidence("emoji-copy", ORIGIN + "👍", followers=10),
        Evidence("short-a", "好", followers=5),
        Evidence("short-b", "好", followers=4),
    ]
    kept = merge_evidence(posts[:2], posts[2:], limit=10)
    assert [item.post_id for item in kept] == [
        "big-repost",
        "other",
        "short-a",
        "short-b",
    ]
    assert [e.post_id for e in merge_evidence(posts, (), limit=2)] == [
        "big-repost",
        "other",
    ]
