"""RSS/Atom: safe parsing, entries to posts, options from the sources file."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from monitor.records import Post
from monitor.sources import rss
from monitor.sources.base import Rejected
from monitor.sources.config import RssSource
from monitor.sources.rss import (
    FeedEntry,
    FeedError,
    RssOptions,
    entry_to_post,
    parse_date,
    parse_feed,
    rss_options_from_config,
)

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
FEED_URL = "https://news.example/feed.xml"

RSS2 = """<?xml version="1.0" encoding="UTF-8"?>
<rss version="2.0" xmlns:dc="http://purl.org/dc/elements/1.1/"
     xmlns:content="http://purl.org/rss/1.0/modules/content/">
<channel><title>Complaints</title>
<item>
  <guid isPermaLink="false">c-1</guid>
  <title>Air conditioner &amp; remote</title>
  <link>https://news.example/c/1</link>
  <description><![CDATA[<p>Broke after <b>two</b>
    days&nbsp;&mdash; &#x4E2D; ok</p>]]></description>
  <pubDate>Tue, 03 Feb 2026 08:30:00 +0800</pubDate>
  <dc:creator>小王</dc:creator>
</item>
<item>
  <title>No guid, no date</title>
  <link>/c/2</link>
  <description>&lt;i&gt;escaped&lt;/i&gt; html</description>
</item>
<item>
  <guid>c-3</guid>
  <title>T</title>
  <content:encoded><![CDATA[<div>full <br/>content</div>]]></content:encoded>
  <description>short</description>
  <pubDate>not a date</pubDate>
</item>
</channel></rss>""".encode()

ATOM = b"""<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom">
  <title>Forum</title>
  <entry>
    <id>tag:forum.example,2026:42</id>
    <title type="html">&lt;b&gt;Bad&lt;/b&gt; service</title>
    <link rel="self" href="https://forum.example/api/42"/>
    <link rel="alternate" href="https://forum.example/t/42"/>
    <published>2026-02-03T00:30:00Z</published>
    <updated>2026-02-04T00:00:00Z</updated>
    <author><name>li</name></author>
    <content type="xhtml"><div xmlns="http://www.w3.org/1999/xhtml">
      <p>Waited <em>three</em> hours</p></div></content>
  </entry>
  <entry>
    <id>tag:forum.example,2026:43</id>
    <title>Only updated</title>
    <updated>2026-02-05T00:00:00+08:00</updated>
    <summary>fine</summary>
  </entry>
</feed>"""

RDF = b"""<?xml version="1.0"?>
<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"
         xmlns="http://purl.org/rss/1.0/" xmlns:dc="http://purl.org/dc/elements/1.1/">
  <channel rdf:about="https://b.example/"><title>B</title></channel>
  <item rdf:about="https://b.example/1">
    <title>RDF item</title><link>https://b.example/1</link>
    <description>text</description><dc:date>2026-02-01T10:00:00+08:00</dc:date>
  </item>
</rdf:RDF>"""


def _posts(body: bytes) -> list[Post | Rejected]:
    return [
        entry_to_post(entry, i, name="news", feed_url=FEED_URL, now=NOW)
        for i, entry in enumerate(parse_feed(body))
    ]


def test_rss2_entries_become_posts_with_plain_text() -> None:
    first, second, third = _posts(RSS2)
    assert isinstance(first, Post)
    assert first.id == "news:c-1"
    assert first.text == "Air conditioner & remote Broke after two days — 中 ok"
    assert first.published_at == datetime(2026, 2, 3, 0, 30, tzinfo=UTC)
    assert first.author == "小王" and first.url == "https://news.example/c/1"
    assert first.source == "news" and not first.meta

    # No guid: the id is the hash of the (absolute) link; no date: fetch time.
    assert isinstance(second, Post)
    link = "https://news.example/c/2"
    assert second.id == "news:" + hashlib.sha256(link.encode()).hexdigest()[:32]
    assert second.url == link
    assert second.text == "No guid, no date escaped html"
    assert second.published_at == NOW
    assert second.meta == {"published_at_from": "fetch_time"}

    # content:encoded wins over description; an unreadable date is kept in meta.
    assert isinstance(third, Post)
    assert third.text == "T full content"
    assert third.meta == {
        "published_at_from": "fetch_time",
        "published_at_unread": "not a date",
    }


def test_atom_entries_take_alternate_link_and_published() -> None:
    first, second = _posts(ATOM)
    assert isinstance(first, Post) and isinstance(second, Post)
    assert first.id == "news:tag:forum.example,2026:42"
    assert first.text == "Bad service Waited three hours"
    assert first.url == "https://forum.example/t/42"
    assert first.published_at == datetime(2026, 2, 3, 0, 30, tzinfo=UTC)
    assert first.author == "li"
    assert second.published_at == datetime(2026, 2, 4, 16, 0, tzinfo=UTC)
    assert second.text == "Only updated fine"


def test_rdf_items_use_rdf_about() -> None:
    (post,) = _posts(RDF)
    assert isinstance(post, Post)
    assert post.id == "news:https://b.example/1"
    assert post.published_at == datetime(2026, 2, 1, 2, 0, tzinfo=UTC)


def test_gbk_declared_feed_is_decoded() -> None:
    body = (
        '<?xml version="1.0" encoding="gb2312"?><rss><channel><item>'
        "<guid>g1</guid><title>空调坏了</title></item></channel></rss>"
    ).encode("gb2312")
    (post,) = _posts(body)
    assert isinstance(post, Post) and post.text == "空调坏了"


def test_entities_of_an_unread_dtd_keep_their_html_meaning() -> None:
    body = (
        b'<?xml version="1.0" encoding="ISO-8859-1"?>\n'
        b'<!DOCTYPE rss PUBLIC "-//Netscape Communications//DTD RSS 0.91//EN"'
        b' "http://my.netscape.com/publish/formats/rss-0.91.dtd">\n'
        b'<rss version="0.91"><channel><item><link>http://a.example/1</link>'
        b"<title>caf\xe9&nbsp;&mdash;&bogus;ok</title></item></channel></rss>"
    )
    (entry,) = parse_feed(body)
    assert entry.title == "caf\xe9\xa0\u2014ok"


@pytest.mark.parametrize(
    ("entry", "reason", "detail"),
    [
        (FeedEntry(title="no id, no link"), "mapping", "neither an id nor a link"),
        (FeedEntry(id="x", title=" <b> </b> "), "mapping", "no title and no text"),
        (
            FeedEntry(id="x", title="t", date="2199-01-01T00:00:00Z"),
            "invalid",
            "published_at",
        ),
    ],
)
def test_unusable_entries_are_rejected_with_their_fields(
    entry: FeedEntry, reason: str, detail: str
) -> None:
    result = entry_to_post(entry, 7, name="news", feed_url=FEED_URL, now=NOW)
    assert isinstance(result, Rejected)
    assert (result.index, result.reason) == (7, reason)
    assert detail in result.detail
    assert b'"title"' in result.raw


def test_unfit_link_is_dropped_and_long_guid_hashed() -> None:
    entry = FeedEntry(id="g" * 600, link="javascript:alert(1)", title="t")
    result = entry_to_post(entry, 0, name="news", feed_url=FEED_URL, now=NOW)
    assert isinstance(result, Post)
    assert result.url is None
    assert result.id == "news:" + hashlib.sha256(b"g" * 600).hexdigest()[:32]


def test_future_entries_refused_when_asked() -> None:
    entry = FeedEntry(id="x", title="t", date="2026-03-01T13:00:00Z")
    result = entry_to_post(
        entry, 0, name="n", feed_url=FEED_URL, now=NOW, max_future_seconds=60
    )
    assert isinstance(result, Rejected) and result.reason == "invalid"


BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol9 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
]>
<rss><channel><item><guid>1</guid><title>&lol9;</title></item></channel></rss>"""
EXTERNAL = b"""<?xml version="1.0"?>
<!DOCTYPE rss [<!ENTITY secret SYSTEM "file:///etc/passwd">]>
<rss><channel><item><guid>1</guid><title>&secret;</title></item></channel></rss>"""
PARAMETER = b"""<?xml version="1.0"?>
<!DOCTYPE rss [<!ENTITY % remote SYSTEM "http://127.0.0.1:9/x.dtd"> %remote;]>
<rss><channel/></rss>"""
QUADRATIC = (
    b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY a "'
    + b"x" * 10_000
    + b'">]><rss><channel><item><title>'
    + b"&a;" * 1000
    + b"</title></item></channel></rss>"
)


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (BILLION_LAUGHS, "declares entities"),
        (EXTERNAL, "declares entities"),
        (PARAMETER, "declares entities"),
        (QUADRATIC, "declares entities"),
        (b"<a>" * 100 + b"</a>" * 100, "deeper than 64"),
        (b"<html><body>Not found</body></html>", "not an RSS or Atom feed"),
        (b"<rss><channel><item></channel></rss>", "not well-formed XML"),
        (b'{"items": []}', "not well-formed XML"),
        (
            b"<rss><channel><item><title>&nbsp;</title></item></channel></rss>",
            "undefined entity",
        ),
        (b'<?xml version="1.0" encoding="no-such-codec"?><rss/>', "unknown encoding"),
        (b"", "not well-formed XML"),
    ],
)
def test_hostile_or_wrong_documents_are_refused(body: bytes, reason: str) -> None:
    with pytest.raises(FeedError, match=reason):
        parse_feed(body)


def test_element_count_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(rss, "MAX_ELEMENTS", 50)
    items = b"<item><guid>1</guid></item>" * 30
    with pytest.raises(FeedError, match="more than 50 elements"):
        parse_feed(b"<rss><channel>" + items + b"</channel></rss>")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Tue, 03 Feb 2026 08:30:00 +0800", datetime(2026, 2, 3, 0, 30, tzinfo=UTC)),
        ("Tue, 03 Feb 2026 08:30:00 GMT", datetime(2026, 2, 3, 8, 30, tzinfo=UTC)),
        ("2026-02-03T08:30:00Z", datetime(2026, 2, 3, 8, 30, tzinfo=UTC)),
        ("2026-02-03T08:30:00", datetime(2026, 2, 3, 8, 30, tzinfo=UTC)),
        ("yesterday", None),
        ("", None),
        (None, None),
    ],
)
def test_parse_date_reads_rfc822_and_iso(
    text: str | None, expected: datetime | None
) -> None:
    assert parse_date(text) == expected


_texts = st.text(max_size=200)


@given(
    st.builds(
        FeedEntry,
        id=st.none() | _texts,
        link=st.none() | _texts,
        title=_texts,
        body=_texts,
        date=st.none() | _texts,
        author=st.none() | _texts,
    )
)
def test_entry_to_post_never_raises(entry: FeedEntry) -> None:
    result = entry_to_post(entry, 0, name="n", feed_url=FEED_URL, now=NOW)
    assert isinstance(result, Post | Rejected)
    if isinstance(result, Post):
        assert result.id.startswith("n:") and result.source == "n"


def test_options_from_config_resolves_headers_and_durations() -> None:
    source = RssSource.model_validate(
        {
            "name": "complaints",
            "kind": "rss",
            "url": "http://127.0.0.1:8082/feed.xml",
            "interval": "5m",
            "timeout": "7s",
            "rate": {"per_second": 0.5, "burst": 2},
            "headers": {"Cookie": "s=${SOURCE_COOKIE}"},
        },
        context={"env": {"SOURCE_COOKIE": "hunter2"}},
    )
    options = rss_options_from_config(source, max_body_bytes=1000)
    assert options == RssOptions(
        name="complaints",
        url="http://127.0.0.1:8082/feed.xml",
        interval_seconds=300.0,
        headers={"Cookie": "s=hunter2"},
        rate_per_second=0.5,
        rate_burst=2,
        timeout_seconds=7.0,
        max_body_bytes=1000,
    )
    assert "hunter2" not in repr(options)
