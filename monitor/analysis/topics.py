"""Matching posts to watched topics."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
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
        for name, keywords, exclude in self._topics:
            if any(word in folded for word in keywords) and not any(
                word in folded for word in exclude
            ):
                found.add(name)
        return sorted(found)


def _fold(word: str) -> str:
    return normalise_text(word).lower()
