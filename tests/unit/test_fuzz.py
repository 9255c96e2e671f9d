"""A seeded mutation fuzzer over the sample feed, through every stage's pure code.

Each case starts from a line of ``samples/feed.jsonl`` and is mutated: bytes
flipped, inserted, spliced or cut; a field set to a hostile value (deep or
huge ``meta``, integers beyond 64 bits, lone surrogates, NaN, far-future or
far-past dates, ``javascript:`` URLs, 40,000-character tokens, markup and
character references that used to be slow or raise); or the text rewritten.
Payloads go in as bytes, str or an already decoded mapping (the replay and
CSV path, where Python values that JSON cannot carry can appear).

Every case then follows the score stage's path: ``parse_post`` (with the
worker's clock and future bound) -> ``PostScorer.score_many`` (in batches, as
the stage does) -> ``encode_scored_post`` (under the producer's message
limit) -> ``decode_scored_post`` -> ``to_es_document`` (and its JSON body)
-> ``PostFacts.from_scored``. The only exception allowed anywhere is
``InvalidRecordError`` from ``parse_post``.

5,000 cases by default (seed fixed); set ``MONITOR_FUZZ_CASES`` for more and
``MONITOR_FUZZ_SEED`` for another sequence.
"""

from __future__ import annotations

import os
import random
import time
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import orjson
import pytest

from monitor.analysis.sentiment.labels import LabelThresholds
from monitor.analysis.windows import PostFacts
from monitor.config.rules import load_rules
from monitor.errors import InvalidRecordError
from monitor.records import (
    MAX_MESSAGE_BYTES,
    Post,
    decode_scored_post,
    encode_scored_post,
    parse_post,
)
from monitor.sinks.elasticsearch.posts import to_es_document
from monitor.stages.score import PostScorer

ROOT = Path(__file__).resolve().parents[2]
FEED = ROOT / "samples" / "feed.jsonl"
RULES = ROOT / "examples" / "rules.yaml"
CASES = int(os.environ.get("MONITOR_FUZZ_CASES", "5000"))
SEED = int(os.environ.get("MONITOR_FUZZ_SEED", "20261204"))
#: The worker clock the fuzzed posts are checked against.
NOW = datetime(2026, 12, 4, 8, 0, tzinfo=timezone.utc)
MAX_FUTURE_SECONDS = 900.0
#: Posts scored per call, as the score stage batches them.
BATCH = 500

Payload = bytes | str | dict[str, Any]


def _nested(depth: int, leaf: Any = 0) -> Any:
    value: Any = leaf
    for level in range(depth):
        value = [value] if level % 2 else {"k": value}
    return value


def _deep_json(depth: int) -> bytes:
    return b'{"k":' * depth + b"0" + b"}" * depth


#: Hostile values for any field (mapping path: any Python value).
HOSTILE: list[Callable[[random.Random], Any]] = [
    lambda r: None,
    lambda r: True,
    lambda r: r.choice([0, -1, 2**63 - 1, 2**63, 2**64 - 1, 2**64, -(2**63) - 1]),
    lambda r: 10 ** r.randrange(19, 5000),
    lambda r: -(10 ** r.randrange(19, 300)),
    lambda r: r.choice([1.5, -0.0, 1e308, float("nan"), float("inf"), -float("inf")]),
    lambda r: "",
    lambda r: " ",
    lambda r: "\ud800",
    lambda r: "a\udfffb",
    lambda r: "\x00\x01\x1f\x7f" * r.randrange(1, 50),
    lambda r: "😀" * r.randrange(1, 3000),
    lambda r: "好" * r.randrange(1, 3000),
    lambda r: "x" * r.choice([63, 64, 65, 255, 256, 257, 511, 512, 513, 2048, 2049]),
    lambda r: "x" * r.randrange(40_000, 70_000),
    lambda r: [],
    lambda r: {},
    lambda r: {1: "non-string key"},
    lambda r: {"\ud800": 1},
    lambda r: (1, "tuple"),
    lambda r: {1, 2},
    lambda r: b"bytes",
    lambda r: _nested(r.randrange(30, 40)),
    lambda r: _nested(r.randrange(250, 1100)),
    lambda r: [0] * r.randrange(20_000, 40_000),
    lambda r: {"s": "y" * r.randrange(60_000, 70_000)},
]

#: Hostile post texts.
TEXTS: list[Callable[[random.Random], str]] = [
    lambda r: "<br" * r.randrange(1, 5000),
    lambda r: "< br " * r.randrange(1, 3000),
    lambda r: "<" * r.randrange(1, 5000) + ">",
    lambda r: "<a" * r.randrange(1, 5000),
    lambda r: "&#" + "9" * r.randrange(1, 6000) + ";",
    lambda r: "&#" + "0" * r.randrange(1, 6000) + "65;",
    lambda r: "&#x" + "f" * r.randrange(1, 3000),
    lambda r: "&#55296;&#0;&#1114112;&#xD800;&nbsp;&amp;lt;",
    lambda r: "&" * r.randrange(1, 3000),
    lambda r: "a" * 40_000 + " " + "b" * 40_000,
    lambda r: (chr(0x4E00 + r.randrange(20_902)) * 2 + "，") * r.randrange(1, 300),
    lambda r: "".join(chr(r.randrange(0x20, 0x3000)) for _ in range(r.randrange(500))),
    lambda r: "".join(chr(r.randrange(0x10000, 0x10FFFF)) for _ in range(200)),
    lambda r: "😀" * r.randrange(1, 100_001),
    lambda r: "\x01" * r.randrange(60_000, 70_000),
    lambda r: "\u3000\t\n\r\x0b\x0c\u2028" * r.randrange(1, 1000),
    lambda r: "環境很好，服務態度差！" * r.randrange(1, 200),
    lambda r: "好。\n" * r.randrange(1, 2000),
    lambda r: "",
]

#: Hostile values per field of the post format.
FIELD_VALUES: dict[str, list[Callable[[random.Random], Any]]] = {
    "id": [
        lambda r: "x" * r.choice([1, 511, 512, 513]),
        lambda r: "好" * r.choice([170, 171]),
        lambda r: r.randrange(-(2**70), 2**70),
    ],
    "published_at": [
        lambda r: (NOW + timedelta(seconds=r.randrange(-(10**9), 10**9))).isoformat(),
        lambda r: (NOW + timedelta(seconds=r.choice([899, 900, 901]))).isoformat(),
        lambda r: (NOW + timedelta(days=365)).isoformat(),
        lambda r: "2100-12-31T23:59:59-14:00",
        lambda r: "1970-01-01T00:00:00+08:00",
        lambda r: "1970-01-01T00:00:00Z",
        lambda r: "9999-12-31T23:59:59-23:59",
        lambda r: "0001-01-01T00:00:00+23:59",
        lambda r: "2026-11-20T10:00:00",
        lambda r: "2026-11-20T10:00:00+25:00",
        lambda r: " 2026-11-20T10:00:00Z ",
    ],
    "url": [
        lambda r: "javascript:alert(1)",
        lambda r: "JAVASCRIPT://x%0aalert(1)",
        lambda r: "https://example.com/" + "a" * r.choice([2000, 2028, 2029, 5000]),
        lambda r: "https://example.com/a b",
        lambda r: "http://例子.测试/路径?q=好#f",
        lambda r: "data:text/html;base64,PGI+",
    ],
    "metrics": [
        lambda r: {"likes": r.choice([-1, 2**63 - 1, 2**63, 1.5, 1e300, "9"])},
        lambda r: {"followers": 10 ** r.randrange(10, 5000)},
        lambda r: {"reposts": float("nan")},
        lambda r: [1, 2],
    ],
    "topic": [lambda r: "空调异味", lambda r: "t" * r.choice([64, 65, 40_000])],
    "source": [lambda r: "s" * r.choice([64, 65]), lambda r: "weibo"],
    "author": [lambda r: "a" * r.choice([256, 257]), lambda r: "\ud83d"],
}

TOKENS = [
    b"{",
    b"}",
    b"[",
    b"]",
    b'"',
    b"\\",
    b",",
    b":",
    b"\\ud800",
    b"\\u0000",
    b"1e999",
    b"NaN",
    b"null",
    b"-",
    b"0",
    b"\xff",
    b"\xc3",
    b"\xf0\x9f",
    b" ",
]


def _mutate_bytes(rng: random.Random, line: bytes, lines: list[bytes]) -> bytes:
    data = bytearray(line)
    for _ in range(rng.randrange(1, 6)):
        action = rng.randrange(6)
        at = rng.randrange(len(data) + 1)
        if action == 0 and data:
            data[min(at, len(data) - 1)] = rng.randrange(256)
        elif action == 1:
            data[at:at] = rng.choice(TOKENS)
        elif action == 2 and data:
            del data[at : at + rng.randrange(1, 20)]
        elif action == 3:
            other = rng.choice(lines)
            cut = rng.randrange(len(other) + 1)
            data = data[:at] + bytearray(other[cut:])
        elif action == 4:
            chunk = data[at : at + rng.randrange(1, 30)]
            data[at:at] = chunk * rng.randrange(1, 50)
        else:
            del data[at:]
    return bytes(data)


def _mutate_fields(rng: random.Random, post: dict[str, Any]) -> dict[str, Any]:
    post = dict(post)
    for _ in range(rng.randrange(1, 4)):
        choice = rng.randrange(5)
        if choice == 0:
            post["text"] = rng.choice(TEXTS)(rng)
        elif choice == 1:
            field = rng.choice(list(FIELD_VALUES))
            post[field] = rng.choice(FIELD_VALUES[field])(rng)
        elif choice == 2:
            post[rng.choice(["customer_tier", "extra", "x"])] = rng.choice(HOSTILE)(rng)
        elif choice == 3:
            field = rng.choice(["id", "text", "published_at", "source", "url", "meta"])
            post[field] = rng.choice(HOSTILE)(rng)
        else:
            post.pop(rng.choice(list(post)), None)
    return post


def _to_payload(rng: random.Random, post: dict[str, Any]) -> Payload:
    """The post as bytes or str when JSON can carry it, else as the mapping."""
    if rng.random() < 0.3:
        return post
    try:
        encoded = orjson.dumps(post)
    except (orjson.JSONEncodeError, TypeError):
        return post
    return encoded.decode() if rng.random() < 0.2 else encoded


def generate(count: int, seed: int) -> list[Payload]:
    """``count`` mutated payloads, the same for the same seed."""
    rng = random.Random(seed)
    lines = FEED.read_bytes().splitlines()
    posts = [orjson.loads(line) for line in lines]
    out: list[Payload] = []
    for _ in range(count):
        kind = rng.random()
        if kind < 0.25:
            out.append(_mutate_bytes(rng, rng.choice(lines), lines))
        elif kind < 0.9:
            out.append(_to_payload(rng, _mutate_fields(rng, rng.choice(posts))))
        elif kind < 0.95:
            out.append(_deep_json(rng.randrange(20, 1100)))
        else:
            out.append(rng.choice(lines))
    return out


def _describe(payload: Payload) -> str:
    try:
        text = repr(payload)
    except ValueError:  # an integer of more than 4,300 digits
        text = f"<a {type(payload).__name__} holding a huge integer>"
    return text if len(text) < 300 else text[:300] + f"... ({len(text):,} chars)"


@pytest.fixture(scope="module")
def scorer() -> PostScorer:
    """The scorer the score stage builds, with the example rules' topics."""
    rules = load_rules(RULES)
    return PostScorer(
        list(rules.topics), LabelThresholds(0.3, 0.7), keywords_per_post=5
    )


def test_only_invalid_record_errors_escape_and_only_from_parse_post(
    scorer: PostScorer,
) -> None:
    started = time.perf_counter()
    payloads = generate(CASES, SEED)
    problems: list[str] = []
    valid: list[tuple[Payload, Post]] = []
    refused = 0
    for payload in payloads:
        try:
            post = parse_post(payload, now=NOW, max_future_seconds=MAX_FUTURE_SECONDS)
        except InvalidRecordError as exc:
            refused += 1
            exc.reason.encode("utf-8")  # the reason goes into a dead letter
            continue
        except Exception as exc:  # noqa: BLE001 - the finding this test is for
            problems.append(f"parse_post: {exc!r} on {_describe(payload)}")
            continue
        valid.append((payload, post))
    for start in range(0, len(valid), BATCH):
        batch = valid[start : start + BATCH]
        try:
            results = scorer.score_many([post for _, post in batch])
        except Exception as exc:  # noqa: BLE001 - it must return exceptions per post
            problems.append(f"score_many raised {exc!r} on a batch of {len(batch)}")
            continue
        for (payload, _), result in zip(batch, results, strict=True):
            if isinstance(result, Exception):
                problems.append(f"score: {result!r} on {_describe(payload)}")
                continue
            try:
                encoded = encode_scored_post(result)
                assert len(encoded) <= MAX_MESSAGE_BYTES, len(encoded)
                data = decode_scored_post(encoded)
                doc = to_es_document(
                    data, prefix="fuzz", utc_offset="+08:00", indexed_at=NOW
                )
                orjson.dumps(doc.body)
                PostFacts.from_scored(data)
            except Exception as exc:  # noqa: BLE001 - the finding this test is for
                problems.append(f"after scoring: {exc!r} on {_describe(payload)}")
    elapsed = time.perf_counter() - started
    print(
        f"fuzz: {len(payloads):,} cases (seed {SEED}), {refused:,} refused, "
        f"{len(valid):,} scored, {elapsed:.1f} s"
    )
    assert len(payloads) >= 5_000 or "MONITOR_FUZZ_CASES" in os.environ
    assert valid and refused  # both paths were exercised
    assert not problems, f"{len(problems)} problems:\n" + "\n".join(problems[:20])
