"""From complete buckets to ``hot_word`` triggers: the detectors the rules need.

A ``hot_word`` rule is either a topic's (hot words within the topic's posts:
they join the topic's incident) or one of the rules file's ``hot_words:``
(topic :data:`~monitor.analysis.tickets.model.ALL_POSTS`: every post, one
incident per word by default). :class:`HotWordRules` runs one
:class:`~monitor.analysis.hotwords.HotWordDetector` per key the rules read —
``all`` for every post, ``topic:<name>`` per topic — on each complete bucket,
and turns the hot words whose posts over the detector's span reach a rule's
``threshold`` into triggers: the word, its posts, its expected posts (the
baseline) and its surprise. Its example posts are the bucket's evidence
posts (a topic's most influential negative posts) that contain the word,
else the topic's evidence.

Over every post the detector gets each word's ``[posts, negative]`` and
fires a word only if at least half of its posts are negative
(``HotWordConfig.min_negative_share``): a hot word is a risk signal
(异常高频热词), and the words of a promotion surge in happy posts. A
``hot_words:`` hot word that is one of a watched topic's keywords, or whose
posts lie mostly (half or more) in one watched topic, carries that topic,
so it joins the topic's incident as a signal.

Each firing passes the rule's latch (``<rule>@<topic>/<word>``), so one word
fires a rule at most once per rule window while it stays hot; latches of
words quiet for a day are dropped.

Pure: no Faust, no I/O, no clock; state round-trips through JSON-able dicts.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import replace
from typing import Any

from monitor.analysis.detection import build_trigger, trigger_evidence
from monitor.analysis.hotwords import (
    BackgroundPrior,
    HotWord,
    HotWordConfig,
    HotWordDetector,
)
from monitor.analysis.tickets.model import ALL_POSTS, HOT_WORD, AlertRule, Trigger
from monitor.analysis.windows import TopicCounts, WindowAggregate

#: ``gate(rule, series, end, crossed, final, period) -> verdict`` (a latch).
Gate = Callable[[str, str, int, bool, bool, int], "str | None"]


def detector_key(topic: str) -> str:
    """Return the detector a rule of ``topic`` reads: ``all`` or ``topic:<name>``."""
    return "all" if topic == ALL_POSTS else f"topic:{topic}"


class HotWordRules:
    """The hot-word detectors of the current ``hot_word`` rules; see the module.

    Args:
        bucket_seconds: Bucket length.
        prior: The corpus background shared by every detector (None: none).
        config: Detector settings (``bucket_seconds`` is set from the above).

    """

    def __init__(
        self,
        bucket_seconds: int,
        prior: BackgroundPrior | None = None,
        config: HotWordConfig | None = None,
    ) -> None:
        """Start with no detector."""
        base = config or HotWordConfig()
        self.config = HotWordConfig(
            **{**_fields(base), "bucket_seconds": bucket_seconds}
        )
        self.prior = prior
        self.detectors: dict[str, HotWordDetector] = {}
        #: key -> start of the last bucket the detector learned
        self.last: dict[str, int] = {}
        self.dirty: set[str] = set()
        self.gone: set[str] = set()

    def completed(
        self,
        bucket: WindowAggregate,
        rules: Sequence[AlertRule],
        gate: Gate,
        stop_words: Iterable[str] = (),
        topic_words: Mapping[str, Iterable[str]] | None = None,
    ) -> list[Trigger]:
        """Feed a complete bucket to the detectors the rules read; return triggers.

        ``topic_words``: each watched topic's keywords; a ``hot_words:`` hot
        word that is one of them joins that topic (see :func:`home_topic`).

        A bucket at or before one a detector already learned (the merge
        completing it again after a restart) is skipped by that detector.
        """
        mine = [rule for rule in rules if rule.kind == HOT_WORD]
        keys: dict[str, list[AlertRule]] = {}
        for rule in mine:
            keys.setdefault(detector_key(rule.topic), []).append(rule)
        for key in [k for k in self.detectors if k not in keys]:
            self._drop(key)
        stop = frozenset(stop_words)
        found: dict[str, list[HotWord]] = {}
        least = int(min((rule.threshold for rule in mine), default=1))
        for key in sorted(keys):
            if self.last.get(key, bucket.start - 1) >= bucket.start:
                continue
            detector = self.detectors.get(key)
            if detector is None:
                detector = self.detectors[key] = HotWordDetector(
                    self.config, prior=self.prior, key=key
                )
            posts, words = _input(bucket, key)
            found[key] = detector.update(
                bucket.start,
                posts,
                {word: n for word, n in words.items() if word not in stop},
                min_posts=least,
            )
            self.last[key] = bucket.start
            self.dirty.add(key)
        triggers: list[Trigger] = []
        for key, key_rules in sorted(keys.items()):
            for word in found.get(key, []):
                for rule in key_rules:
                    trigger = self._fire(rule, word, bucket, gate, topic_words)
                    if trigger is not None:
                        triggers.append(trigger)
        return triggers

    def _fire(
        self,
        rule: AlertRule,
        word: HotWord,
        bucket: WindowAggregate,
        gate: Gate,
        topic_words: Mapping[str, Iterable[str]] | None,
    ) -> Trigger | None:
        if word.span_count < rule.threshold:
            return None
        end = bucket.end
        counts = _evidence_of(bucket, rule.topic)
        if rule.topic == ALL_POSTS:
            home = home_topic(bucket, word.term, topic_words)
            if home is not None:  # it joins that topic's incident
                rule = replace(rule, topic=home)
                counts = bucket.topics[home]
        series = f"{rule.topic}/{word.term}"
        if gate(rule.name, series, end, True, True, rule.window_seconds) != "fire":
            return None
        examples = [
            item["post_id"]
            for item in counts.evidence
            if word.term in item.get("excerpt", "")
        ]
        return build_trigger(
            rule,
            counts,
            word.span_start,
            end,
            keyword=word.term,
            observed_value=word.span_count,
            expected_value=round(word.span_expected, 3),
            burst_score=round(word.score, 3),
            # Posts with the word first; else the topic's own evidence.
            evidence=trigger_evidence(counts, examples) or trigger_evidence(counts),
            keywords=(word.term,),
        )

    def _drop(self, key: str) -> None:
        self.detectors.pop(key, None)
        self.last.pop(key, None)
        self.dirty.discard(key)
        self.gone.add(key)

    # -- persistence -------------------------------------------------------

    def writes(self) -> dict[str, Any | None]:
        """Return ``{key: snapshot or None}`` of what changed; clears the record."""
        out: dict[str, Any | None] = {
            key: {"last": self.last[key], "state": self.detectors[key].snapshot()}
            for key in sorted(self.dirty)
        }
        out.update({key: None for key in sorted(self.gone)})
        self.dirty.clear()
        self.gone.clear()
        return out

    def restore(self, key: str, value: Mapping[str, Any]) -> None:
        """Take one logged detector back."""
        self.detectors[key] = HotWordDetector.restore(
            value["state"], self.config, prior=self.prior
        )
        self.last[key] = int(value["last"])


def home_topic(
    bucket: WindowAggregate,
    word: str,
    topic_words: Mapping[str, Iterable[str]] | None = None,
) -> str | None:
    """Return the watched topic a hot word belongs to, if any.

    The first topic (in name order) that has the word among its keywords;
    else the one holding at least half of the word's posts in the bucket;
    else None.
    """
    for name, words in sorted((topic_words or {}).items()):
        if word in {w.lower() for w in words}:
            return name
    entry = bucket.keywords.get(word)
    total = int(entry[0]) if entry else 0
    best = max(
        ((c.keywords.get(word, 0), name) for name, c in bucket.topics.items()),
        default=(0, ""),
    )
    return best[1] if total and best[0] * 2 >= total else None


def _input(
    bucket: WindowAggregate, key: str
) -> tuple[int, Mapping[str, int | Sequence[int]]]:
    """Return a detector's posts and word counts (``[posts, negative]``)."""
    if key == "all":
        return bucket.posts, bucket.keywords
    topic = bucket.topics.get(key.split(":", 1)[1]) or TopicCounts()
    return topic.posts, dict(topic.keywords)


def _evidence_of(bucket: WindowAggregate, topic: str) -> TopicCounts:
    """Return the counts whose evidence posts a rule of ``topic`` shows."""
    if topic != ALL_POSTS:
        return bucket.topics.get(topic) or TopicCounts()
    counts = TopicCounts()  # every post: any topic's evidence
    for each in bucket.topics.values():
        counts.evidence += [i for i in each.evidence if i not in counts.evidence]
    return counts


def _fields(config: HotWordConfig) -> dict[str, Any]:
    return {name: getattr(config, name) for name in config.__dataclass_fields__}
