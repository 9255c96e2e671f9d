"""The sources file: every problem with its line, secrets resolved and hidden."""

from __future__ import annotations

import json
import tempfile
import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from monitor.cli import cli
from monitor.errors import ConfigError
from monitor.sources.config import (
    Const,
    HttpPollSource,
    RssSource,
    load_sources,
)

EXAMPLE = Path(__file__).parents[2] / "examples" / "sources.yaml"
ENV = {"SOURCE_CRM_SECRET": "crm-hunter2", "SOURCE_REVIEWS_TOKEN": "tok-hunter3"}

MINIMAL = """\
sources:
  - name: crm-push
    kind: webhook
    secret: ${SOURCE_CRM_SECRET}
  - name: reviews
    kind: http_poll
    url: http://127.0.0.1:8081/reviews?since={cursor}
    interval: 30s
    items: data.items
    cursor: data.next_cursor
    map: {id: review_id, text: content, published_at: created_at, author: user.nick}
  - name: complaints
    kind: rss
    url: http://127.0.0.1:8082/feed.xml
    interval: 5m
"""


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "sources.yaml"
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def _problems(path: Path, env: dict[str, str] | None = None) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load_sources(path, env=ENV if env is None else env)
    return list(caught.value.problems)


def test_the_issues_minimal_file_loads_as_typed_sources(tmp_path: Path) -> None:
    config = load_sources(_write(tmp_path, MINIMAL), env=ENV)

    assert set(config.webhooks) == {"crm-push"}
    assert config.webhooks["crm-push"].secret.get_secret_value() == "crm-hunter2"
    reviews, complaints = config.pollers["reviews"], config.pollers["complaints"]
    assert isinstance(reviews, HttpPollSource)
    assert reviews.interval == 30.0
    assert reviews.items == "data.items"
    assert reviews.cursor == "data.next_cursor"
    assert reviews.map["author"] == "user.nick"
    assert isinstance(complaints, RssSource)
    assert complaints.interval == 300.0


def test_secrets_are_resolved_but_never_shown(tmp_path: Path) -> None:
    config = load_sources(EXAMPLE, env=ENV)

    shown = repr(config) + str(config)
    assert "hunter" not in shown
    poller = config.pollers["reviews"]
    assert poller.headers["Authorization"].get_secret_value() == "Bearer tok-hunter3"
    assert poller.map["topic"] == Const(const="点评")


def test_a_missing_variable_is_named_and_a_literal_secret_refused(
    tmp_path: Path,
) -> None:
    path = _write(
        tmp_path,
        """\
        sources:
          - name: a
            kind: webhook
            secret: ${SOURCE_NOT_SET}
          - name: b
            kind: webhook
            secret: hunter2-literal
        """,
    )

    problems = _problems(path)

    assert problems == [
        f"{path} line 4: source 'a': environment variable SOURCE_NOT_SET is not set",
        f"{path} line 7: source 'b': secrets are written as ${{SOURCE_NAME}} "
        "references to the environment, never inline",
    ]
    assert not any("hunter2" in p for p in problems)


def test_every_problem_is_reported_with_its_line(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        """\
        sources:
          - name: reviews
            kind: http_poll
            url: ftp://127.0.0.1/reviews
            interval: 30
            items: data..items
            map: {id: review_id, text: content, colour: x}
          - name: reviews
            kind: rss
            url: http://127.0.0.1:8082/feed.xml
            interval: 5m
            secrett: ${SOURCE_CRM_SECRET}
          - name: bad name
            kind: webhook
            secret: ${SOURCE_CRM_SECRET}
          - name: feed
            kind: atom
        """,
    )

    assert _problems(path) == [
        f"{path} line 4: source 'reviews': url must start with http:// or https://",
        f"{path} line 5: source 'reviews': duration 30 needs a unit: s, m, h or d",
        f"{path} line 6: source 'reviews': 'data..items' is not a dotted path "
        "like data.items",
        f"{path} line 7: source 'reviews': map: unknown post field 'colour'; "
        "expected one of author, id, published_at, source, text, topic, url",
        f"{path} line 8: name 'reviews' is already used (item 1)",
        f"{path} line 12: source 'reviews': unknown key 'secrett'",
        f"{path} line 13: name must be 1-64 letters, digits, '-' or '_'",
        f"{path} line 17: source 'feed': unknown kind 'atom'; expected one of "
        "webhook, http_poll, rss",
    ]


def test_a_file_without_sources_is_refused(tmp_path: Path) -> None:
    path = _write(tmp_path, "webhooks: []\n")

    assert _problems(path) == [f"{path} line 1: expected a mapping with 'sources:'"]


@settings(max_examples=60, deadline=None)
@given(
    name=st.text(
        alphabet=st.characters(min_codepoint=32, max_codepoint=126)
        | st.sampled_from("空调é٣"),
        max_size=70,
    )
)
def test_names_are_letters_digits_dash_and_underscore(name: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "s.yaml"
        path.write_text(
            "sources:\n  - {name: %s, kind: webhook, secret: '${SOURCE_X}'}\n"
            % json.dumps(name),
            encoding="utf-8",
        )
        valid = 1 <= len(name) <= 64 and all(
            c.isascii() and (c.isalnum() or c in "-_") for c in name
        )
        try:
            config = load_sources(path, env={"SOURCE_X": "s"})
        except ConfigError as exc:
            assert not valid, exc.problems
        else:
            assert valid and set(config.webhooks) == {name}


def test_the_example_file_passes_the_check(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)

    done = CliRunner().invoke(cli, ["sources", "check", str(EXAMPLE)], obj={})

    assert done.exit_code == 0, done.output
    assert "OK: 1 webhooks, 2 pollers" in done.output
    assert "hunter" not in done.output


def test_the_check_exits_2_listing_problems(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ENV:
        monkeypatch.delenv(name, raising=False)

    done = CliRunner().invoke(cli, ["sources", "check", str(EXAMPLE)], obj={})

    assert done.exit_code == 2
    assert "SOURCE_CRM_SECRET is not set" in done.output
    assert "SOURCE_REVIEWS_TOKEN is not set" in done.output
