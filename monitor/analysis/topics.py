"""Matching posts to watched topics."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from monitor.analysis.text import normalise_text

#: Longest topic name, in characters. A topic name becomes the key of two
#: count series (``topic:<name>``, ``negative:<name>``), part of their
#: Elasticsearch ids (at most 512 bytes) and a keyword term: 64 characters
#: are at most 256 bytes of UTF-8.
MAX_TOPIC_CHARS = 64


@dataclass(frozen=True)
class WatchedTopic:
    """A topic the team watches.

    Attributes:
        name: Topic name as shown on dashboards and tickets.
        keywords: A post matches if its normalised text contains any of them
            (case-insensitive substring).
        exclude: ...unless it also contains one of these.

    """

    name: str
    keywords: tuple[str, ...]
    exclude: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        """Refuse a name that cannot key a count series.

        Raises:
            ValueError: If the name is longer than :data:`MAX_TOPIC_CHARS`
                characters.

        """
        if len(self.name) > MAX_TOPIC_CHARS:
            raise ValueError(
                f"topic name must be at most {MAX_TOPIC_CHARS} characters, "
                f"got {len(self.name)}: {self.name[:MAX_TOPIC_CHARS]!r}"
            )


class TopicMatcher:
    """Finds the watched topics a normalised text belongs to."""

    def __init__(self, topics: Iterable[WatchedTopic]) -> None:
        # A keyword that normalises to "" (say "&nbsp;") would match every post.
        self._topics = [
            (
                topic.name,
                tuple(word for word in map(_fold, topic.keywords) if word),
                tuple(word for word in map(_fold, topic.exclude) if word),
            )
            for topic in topics
        ]
        self._search, self._hits = _word_scanner(self._topics)

    @property
    def names(self) -> list[str]:
        """Names of the watched topics, in configuration order."""
        return [name for name, _, _ in self._topics]

    @property
    def keywords(self) -> dict[str, tuple[str, ...]]:
        """Each watched topic's keywords (normalised), by name."""
        return {name: words for name, words, _ in self._topics}

    def match(self, text: str, declared: Sequence[str] = ()) -> list[str]:
        """Return the sorted names of the topics a normalised text matches.

        Args:
            text: The normalised text.
            declared: Topics the source already assigned; always included.

        """
        folded = text.lower()
        found = {name for name in declared if name}
        search = self._search
        if search is None:
            return sorted(found)
        # Every position where some word starts, with the longest word there
        # (the alternation is longest first); the other words there are its
        # prefixes, which _hits folds in.
        matched: set[int] = set()
        excluded: set[int] = set()
        hits = self._hits
        position = 0
        while (hit := search(folded, position)) is not None:
            topics, exclusions = hits[hit.group()]
            matched |= topics
            excluded |= exclusions
            position = hit.start() + 1
        names = self._topics
        found.update(names[index][0] for index in matched - excluded)
        return sorted(found)


_Search = Callable[[str, int], "re.Match[str] | None"]
_Hits = dict[str, tuple[frozenset[int], frozenset[int]]]


def _word_scanner(
    topics: Sequence[tuple[str, tuple[str, ...], tuple[str, ...]]],
) -> tuple[_Search | None, _Hits]:
    """One search for every topic's words, and what finding each word means.

    The search finds, from a position on, the first position where one of
    the words (keywords and exclusions) occurs, and there the longest of them:
    a regex alternation of the literal words, longest first. The words
    occurring at that position are that word and those of its prefixes that
    are words too, so each word maps to the topics (by index) whose keywords,
    and the topics whose exclusions, include it or one of its prefixes.
    One search per occurrence replaces a substring test per word and topic.
    """
    words = sorted(
        {w for _, keywords, exclude in topics for w in keywords + exclude},
        key=len,
        reverse=True,
    )
    if not words:
        return None, {}
    hits: _Hits = {}
    for word in words:
        prefixes = {word[:end] for end in range(1, len(word) + 1)}
        hits[word] = (
            frozenset(i for i, (_, kws, _) in enumerate(topics) if prefixes & set(kws)),
            frozenset(i for i, (_, _, ex) in enumerate(topics) if prefixes & set(ex)),
        )
    search = re.compile("|".join(map(re.escape, words))).search
    return search, hits


def _fold(word: str) -> str:
    return normalise_text(word).lower()
