"""Loading the watched topics (name -> keywords) from a YAML file.

Format::

    topics:
      空调异味:
        keywords: [空调, 异味, 霉味]
        exclude: [空调维修广告]     # optional
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from monitor.analysis.text import normalise_text
from monitor.analysis.topics import WatchedTopic
from monitor.config.yamlfile import load_yaml
from monitor.errors import ConfigError

#: Keys of one watched topic.
TOPIC_KEYS = frozenset({"keywords", "exclude"})

#: A problem with one topic: its path under the topic (``()`` for the topic
#: itself, ``("keywords",)``) and the reason.
TopicProblem = tuple[tuple[str, ...], str]


def read_topic(
    name: Any, body: Any, *, more_keys: frozenset[str] = frozenset()
) -> tuple[WatchedTopic | None, list[TopicProblem]]:
    """Check one entry of a ``topics:`` mapping (the watch list's or the rules').

    Args:
        name: The entry's key (YAML may have made it a number).
        body: Its value: a mapping with ``keywords`` and optional ``exclude``.
        more_keys: Further keys the caller reads itself (the rules' ``rules``).

    Returns:
        The topic, or ``None`` if it cannot be built, and every problem.

    """
    if not isinstance(name, str):
        return None, [((), f"topic name {name!r} is not text; quote it")]
    if not isinstance(body, dict):
        return None, [((), f"topic {name!r} needs a mapping with 'keywords'")]
    problems: list[TopicProblem] = []
    unknown = set(body) - TOPIC_KEYS - more_keys
    if unknown:
        problems.append(((), f"topic {name!r} has unknown keys {sorted(unknown)}"))
    lists: dict[str, tuple[str, ...]] = {}
    for key in ("keywords", "exclude"):
        value = body.get(key, [])
        # A keyword that normalises to "" (say "&nbsp;") would match every post.
        if not isinstance(value, list) or not all(
            isinstance(word, str) and normalise_text(word) for word in value
        ):
            problems.append(
                ((key,), f"{key} of {name!r} must be a list of non-empty strings")
            )
            value = []
        lists[key] = tuple(value)
    if not lists["keywords"]:
        problems.append(((), f"topic {name!r} has no keywords"))
    try:
        topic = WatchedTopic(name, lists["keywords"], lists["exclude"])
    except ValueError as exc:  # a name longer than MAX_TOPIC_CHARS
        return None, [*problems, ((), str(exc))]
    return topic, problems


def load_watchlist(path: Path) -> list[WatchedTopic]:
    """Read watched topics from a YAML file.

    Raises:
        ConfigError: Naming the file line and the reason for each bad entry.

    """
    document = load_yaml(path)
    data = document.data
    if not isinstance(data, dict) or not isinstance(data.get("topics"), dict):
        raise ConfigError(
            [f"{document.where(['topics'])}: expected a 'topics:' mapping"]
        )
    problems: list[str] = []
    topics: list[WatchedTopic] = []
    for name, body in data["topics"].items():
        topic, found = read_topic(name, body)
        for where, reason in found:
            problems.append(f"{document.where(['topics', name, *where])}: {reason}")
        if topic is not None and not found:
            topics.append(topic)
    if problems:
        raise ConfigError(problems)
    return topics
