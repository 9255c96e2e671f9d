"""Loading the watched topics (name -> keywords) from a YAML file.

Format::

    topics:
      空调异味:
        keywords: [空调, 异味, 霉味]
        exclude: [空调维修广告]     # optional
"""

from __future__ import annotations

from pathlib import Path

from monitor.analysis.text import normalise_text
from monitor.analysis.topics import WatchedTopic
from monitor.config.yamlfile import load_yaml
from monitor.errors import ConfigError


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
        where = document.where(["topics", name])
        if not isinstance(name, str):
            problems.append(f"{where}: topic name {name!r} is not text; quote it")
            continue
        if not isinstance(body, dict):
            problems.append(f"{where}: topic {name!r} needs a mapping with 'keywords'")
            continue
        unknown = set(body) - {"keywords", "exclude"}
        if unknown:
            problems.append(
                f"{where}: topic {name!r} has unknown keys {sorted(unknown)}"
            )
        lists: dict[str, tuple[str, ...]] = {}
        for key in ("keywords", "exclude"):
            value = body.get(key, [])
            if not isinstance(value, list) or not all(
                isinstance(word, str) and normalise_text(word) for word in value
            ):
                problems.append(
                    f"{document.where(['topics', name, key])}: {key} of {name!r} "
                    "must be a list of non-empty strings"
                )
                value = []
            lists[key] = tuple(value)
        if not lists["keywords"]:
            problems.append(f"{where}: topic {name!r} has no keywords")
            continue
        try:
            topics.append(WatchedTopic(str(name), lists["keywords"], lists["exclude"]))
        except ValueError as exc:  # a name longer than MAX_TOPIC_CHARS
            problems.append(f"{where}: {exc}")
    if problems:
        raise ConfigError(problems)
    return topics
