"""RSS options: secrets stay out of repr."""

from __future__ import annotations

from monitor.sources.rss import RssOptions


def test_rss_headers_hidden_from_repr() -> None:
    opts = RssOptions(name="c", url="http://x/feed.xml", headers={"Cookie": "s3"})
    assert "s3" not in repr(opts)
    assert opts.interval_seconds == 300.0
