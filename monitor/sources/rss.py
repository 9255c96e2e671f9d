"""RSS and Atom feeds (news, forums, complaint boards) read into posts.

:class:`RssFetcher` implements :class:`~monitor.sources.base.Fetcher`: each
:meth:`~RssFetcher.fetch` GETs the feed (conditional GET with the stored
``ETag`` / ``Last-Modified``; 304 is nothing new) through
:class:`~monitor.sources.http.HttpClient`, parses it with :func:`parse_feed`
and turns each entry into a :class:`~monitor.records.Post`:

- RSS 2.0 (``<rss><channel><item>``), Atom 1.0 (``<feed><entry>``) and
  RSS 1.0 / RDF (``<rdf:RDF><item>``);
- id ``<name>:<guid, atom:id or rdf:about>``, or ``<name>:`` + the first 32
  hex digits of sha256(link) when an entry has none (also when the id would
  be longer than a post id may be: then sha256 of the id);
- text: the title and the content (``content:encoded``, Atom ``content``) or
  summary (``description``, ``summary``), each turned into plain text by
  :func:`monitor.analysis.text.normalise_text` (HTML stripped, entities
  decoded);
- ``published_at`` from ``pubDate``, ``published``, ``updated`` or
  ``dc:date``; an entry with none (or none readable) gets the fetch time and
  ``meta.published_at_from = "fetch_time"``;
- author (``dc:creator``, ``author``, Atom ``author/name``) and url (the
  link, made absolute against the feed URL).

**Safety.** Feeds come from strangers: the XML parser (expat, driven directly)
refuses any entity declaration (billion laughs, quadratic blow-up, external
entities) and any external entity reference, never fetches a DTD, and stops
past :data:`MAX_DEPTH` levels or :data:`MAX_ELEMENTS` elements; the body is
bounded by ``max_body_bytes`` before parsing.

**State.** The stored cursor is the same JSON state as http_poll's
(:class:`~monitor.sources.http_poll.PollState`): validators and hashes of the
last :data:`~monitor.sources.http_poll.RECENT_IDS` post ids, so a feed served
again in full yields duplicates, not new posts, across restarts too.
"""

from __future__ import annotations

import codecs
import hashlib
import html
import logging
import random
import re
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urljoin
from xml.parsers import expat

import orjson

from monitor.analysis.text import normalise_text
from monitor.errors import InvalidRecordError
from monitor.records import (
    MAX_AUTHOR_CHARS,
    MAX_ID_BYTES,
    MAX_TEXT_CHARS,
    MAX_URL_CHARS,
    Post,
    check_http_url,
    parse_post,
)
from monitor.sources.base import Page, Rejected
from monitor.sources.config import RssSource
from monitor.sources.http import FetchError, HttpClient, client_for
from monitor.sources.http_poll import (
    MAX_RAW_BYTES,
    RECENT_IDS,
    PollState,
    decode_state,
    encode_state,
    id_key,
    raw_key,
)
from monitor.sources.limits import RecentIds

log = logging.getLogger(__name__)

#: Deepest element nesting read (XHTML content nests a little).
MAX_DEPTH = 64
#: Most elements read from one feed.
MAX_ELEMENTS = 500_000
#: Most entries read from one feed (the first ones; feeds list newest first).
MAX_ENTRIES = RECENT_IDS

ATOM = "http://www.w3.org/2005/Atom"
RDF = "http://www.w3.org/1999/02/22-rdf-syntax-ns#"
RSS1 = "http://purl.org/rss/1.0/"
RSS090 = "http://my.netscape.com/rdf/simple/0.9/"
DC = "http://purl.org/dc/elements/1.1/"
CONTENT = "http://purl.org/rss/1.0/modules/content/"
#: Encodings expat reads itself; others are decoded by Python first.
_EXPAT_ENCODINGS = frozenset({"utf-8", "utf8", "utf-16", "iso-8859-1", "us-ascii"})
_DECLARED_ENCODING = re.compile(
    rb"^\s*<\?xml[^>]{0,200}?encoding\s*=\s*[\"']([A-Za-z0-9._-]{1,40})[\"']"
)


@dataclass(frozen=True)
class RssOptions:
    """One rss source, close to its YAML entry.

    Attributes:
        name: The source name; post ids are `<name>:<guid or id>`, or
            `<name>:` + the first 32 hex digits of sha256(link) when an entry has none.
        url: The feed's URL.
        interval_seconds: Seconds between polls.
        headers: Resolved secret headers; never logged (hidden from repr).
        rate_per_second: Requests per second at most.
        rate_burst: Requests that may go at once before the rate applies.
        timeout_seconds: Total timeout of one request.
        retries: Retries of one request on 429/5xx/timeouts.
        max_body_bytes: Largest feed body accepted.
        max_future_seconds: Refuse entries dated further ahead of the fetch
            time (None: no check).
        trust_env: Go through the proxies of the environment (the
            ``http_proxy_from_env`` setting).

    """

    name: str
    url: str
    interval_seconds: float = 300.0
    headers: Mapping[str, str] = field(default_factory=dict, repr=False)
    rate_per_second: float = 1.0
    rate_burst: int = 1
    timeout_seconds: float = 10.0
    retries: int = 3
    max_body_bytes: int = 10 * 1024 * 1024
    max_future_seconds: float | None = None
    trust_env: bool = False


class FeedError(ValueError):
    """A document is not a feed this module reads, or is refused (the reason)."""


class _Refused(Exception):
    """Raised from an expat handler to stop the parse."""


@dataclass
class Node:
    """One XML element: its qualified tag (``{ns}local``), attributes, content.

    Attributes:
        tag: ``{namespace}local`` or ``local``.
        attrs: Attributes by qualified name.
        parts: Text and child elements in document order.

    """

    tag: str
    attrs: dict[str, str]
    parts: list[str | Node] = field(default_factory=list)

    def children(self, tag: str | None = None) -> Iterator[Node]:
        """Yield the child elements (with `tag` only, if given)."""
        for part in self.parts:
            if isinstance(part, Node) and (tag is None or part.tag == tag):
                yield part

    def child(self, *tags: str) -> Node | None:
        """Return the first child with the first of `tags` found, or None."""
        for tag in tags:
            for found in self.children(tag):
                return found
        return None

    def text(self) -> str:
        """Return all the text inside, child elements' included."""
        out: list[str] = []
        stack: list[str | Node] = [self]
        while stack:
            part = stack.pop()
            if isinstance(part, str):
                out.append(part)
            else:
                stack.extend(reversed(part.parts))
        return "".join(out)


def _qualified(name: str) -> str:
    uri, _, local = name.rpartition(" ")
    return f"{{{uri}}}{local}" if uri else local


def parse_xml(body: bytes) -> Node:
    """Parse a document safely and return its root element.

    Refuses entity declarations (so no billion laughs or quadratic blow-up),
    external entities, nesting past MAX_DEPTH and more than MAX_ELEMENTS
    elements. An encoding expat does not know (GBK, GB18030, Big5...) is
    decoded by Python first.

    Raises:
        FeedError: The document is not well-formed XML or is refused.

    """
    parser = expat.ParserCreate(namespace_separator=" ")
    parser.buffer_text = True
    parser.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_NEVER)
    root = Node("", {})
    stack = [root]
    count = 0

    def start(name: str, attrs: dict[str, str]) -> None:
        nonlocal count
        count += 1
        if count > MAX_ELEMENTS:
            raise _Refused(f"more than {MAX_ELEMENTS:,} elements")
        if len(stack) > MAX_DEPTH:
            raise _Refused(f"elements nested deeper than {MAX_DEPTH}")
        node = Node(_qualified(name), {_qualified(k): v for k, v in attrs.items()})
        stack[-1].parts.append(node)
        stack.append(node)

    def end(name: str) -> None:
        stack.pop()

    def data(text: str) -> None:
        stack[-1].parts.append(text)

    def skipped(name: str, is_parameter_entity: bool) -> None:
        # An entity of a DTD that is never read (RSS 0.91's &nbsp; and the like):
        # the HTML meaning if it has one, else nothing.
        if not is_parameter_entity:
            text = html.unescape(f"&{name[:32]};")
            if not text.startswith("&"):
                data(text)

    def entity_declared(*args: Any) -> None:
        raise _Refused("the document declares entities (refused: entity expansion)")

    def external(*args: Any) -> int:
        raise _Refused("the document refers to an external entity (refused)")

    parser.StartElementHandler = start
    parser.EndElementHandler = end
    parser.CharacterDataHandler = data
    parser.EntityDeclHandler = entity_declared
    parser.UnparsedEntityDeclHandler = entity_declared
    parser.ExternalEntityRefHandler = external
    parser.SkippedEntityHandler = skipped
    document: bytes | str = body
    declared = _DECLARED_ENCODING.match(body[:300])
    if declared is not None:
        encoding = declared.group(1).decode("ascii").lower()
        if encoding not in _EXPAT_ENCODINGS:
            try:
                codecs.lookup(encoding)
            except LookupError:
                raise FeedError(f"unknown encoding {encoding!r}") from None
            # A str is parsed as UTF-8 whatever the declaration says.
            document = body.decode(encoding, errors="replace")
    try:
        parser.Parse(document, True)
    except _Refused as exc:
        raise FeedError(str(exc)) from None
    except expat.ExpatError as exc:
        raise FeedError(
            f"not well-formed XML: {expat.ErrorString(exc.code)} "
            f"(line {exc.lineno}, column {exc.offset})"
        ) from None
    found = next(root.children(), None)
    if found is None:
        raise FeedError("the document is empty")
    return found


@dataclass(frozen=True)
class FeedEntry:
    """One entry of a feed, before it is a post (plain strings, as found).

    Attributes:
        id: guid, atom:id or rdf:about, if any.
        link: The entry's link, if any (may be relative).
        title: The title (may hold HTML).
        body: The content or summary (may hold HTML).
        date: The date as written (pubDate, published, updated, dc:date).
        author: The author, if any.

    """

    id: str | None = None
    link: str | None = None
    title: str = ""
    body: str = ""
    date: str | None = None
    author: str | None = None


def parse_feed(body: bytes) -> list[FeedEntry]:
    """Read the entries of an RSS 2.0, Atom 1.0 or RSS 1.0 (RDF) feed.

    Raises:
        FeedError: Not XML, refused (see :func:`parse_xml`), or not a feed.

    """
    root = parse_xml(body)
    if root.tag == "rss":
        channel = root.child("channel")
        items = list(channel.children("item")) if channel is not None else []
        return [_rss_item(item) for item in items[:MAX_ENTRIES]]
    if root.tag == f"{{{ATOM}}}feed":
        entries = list(root.children(f"{{{ATOM}}}entry"))
        return [_atom_entry(entry) for entry in entries[:MAX_ENTRIES]]
    if root.tag == f"{{{RDF}}}RDF":
        items = [
            node
            for node in root.children()
            if node.tag in (f"{{{RSS1}}}item", f"{{{RSS090}}}item")
        ]
        return [_rdf_item(item) for item in items[:MAX_ENTRIES]]
    local = root.tag.rpartition("}")[2]
    raise FeedError(f"not an RSS or Atom feed (the root element is <{local[:40]}>)")


def _text_of(node: Node | None) -> str | None:
    if node is None:
        return None
    text = node.text().strip()
    return text or None


def _rss_item(item: Node) -> FeedEntry:
    return FeedEntry(
        id=_text_of(item.child("guid")),
        link=_text_of(item.child("link")),
        title=_text_of(item.child("title")) or "",
        body=_text_of(item.child(f"{{{CONTENT}}}encoded"))
        or _text_of(item.child("description"))
        or "",
        date=_text_of(item.child("pubDate", f"{{{DC}}}date")),
        author=_text_of(item.child(f"{{{DC}}}creator", "author")),
    )


def _atom_entry(entry: Node) -> FeedEntry:
    link = None
    for node in entry.children(f"{{{ATOM}}}link"):
        if node.attrs.get("rel", "alternate") == "alternate" and node.attrs.get("href"):
            link = node.attrs["href"]
            break
        link = link or node.attrs.get("href")
    author = entry.child(f"{{{ATOM}}}author")
    return FeedEntry(
        id=_text_of(entry.child(f"{{{ATOM}}}id")),
        link=link,
        title=_text_of(entry.child(f"{{{ATOM}}}title")) or "",
        body=_text_of(entry.child(f"{{{ATOM}}}content"))
        or _text_of(entry.child(f"{{{ATOM}}}summary"))
        or "",
        date=_text_of(entry.child(f"{{{ATOM}}}published", f"{{{ATOM}}}updated")),
        author=_text_of(author.child(f"{{{ATOM}}}name") if author else None),
    )


def _rdf_item(item: Node) -> FeedEntry:
    ns = item.tag[1:].partition("}")[0]
    return FeedEntry(
        id=item.attrs.get(f"{{{RDF}}}about") or None,
        link=_text_of(item.child(f"{{{ns}}}link")),
        title=_text_of(item.child(f"{{{ns}}}title")) or "",
        body=_text_of(item.child(f"{{{CONTENT}}}encoded"))
        or _text_of(item.child(f"{{{ns}}}description"))
        or "",
        date=_text_of(item.child(f"{{{DC}}}date")),
        author=_text_of(item.child(f"{{{DC}}}creator")),
    )


def parse_date(text: str | None) -> datetime | None:
    """Read an RFC 822 (RSS) or ISO 8601 (Atom, dc:date) date; None if neither.

    A date without a zone is taken as UTC.
    """
    if not text:
        return None
    text = text.strip()[:64]
    when: datetime | None = None
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        try:
            when = datetime.fromisoformat(text)
        except ValueError:
            return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when


def entry_to_post(
    entry: FeedEntry,
    index: int,
    *,
    name: str,
    feed_url: str,
    now: datetime,
    max_future_seconds: float | None = None,
) -> Post | Rejected:
    """Turn one feed entry into a post of source `name`, or say why not.

    Never raises: a failure is a :class:`Rejected` (``mapping``: no id and no
    link, no text; ``invalid``: not a valid post) whose raw bytes are the
    entry's fields as JSON.
    """
    try:
        return _entry_to_post(entry, index, name, feed_url, now, max_future_seconds)
    except Exception as exc:  # noqa: BLE001 - one bad entry never stops a feed
        return _reject(entry, index, "mapping", f"cannot read: {type(exc).__name__}")


def _entry_to_post(
    entry: FeedEntry,
    index: int,
    name: str,
    feed_url: str,
    now: datetime,
    max_future_seconds: float | None,
) -> Post | Rejected:
    url = _absolute(entry.link, feed_url)
    if entry.id:
        post_id = f"{name}:{entry.id}"
        if len(post_id.encode("utf-8", "replace")) > MAX_ID_BYTES:
            post_id = f"{name}:{_hash32(entry.id)}"
    elif entry.link:
        post_id = f"{name}:{_hash32(url or entry.link)}"
    else:
        return _reject(
            entry, index, "mapping", "the entry has neither an id nor a link"
        )
    title, body = normalise_text(entry.title), normalise_text(entry.body)
    if title and body and not body.startswith(title):
        text = f"{title} {body}"
    else:
        text = body or title
    if not text:
        return _reject(entry, index, "mapping", "the entry has no title and no text")
    meta: dict[str, Any] = {}
    if len(text) > MAX_TEXT_CHARS:
        text = text[:MAX_TEXT_CHARS]
        meta["text_truncated"] = True
    published = parse_date(entry.date)
    if published is None:
        published = now
        meta["published_at_from"] = "fetch_time"
        if entry.date:
            meta["published_at_unread"] = entry.date[:64]
    document: dict[str, Any] = {
        "id": post_id,
        "text": text,
        "published_at": published.isoformat(),
        "source": name,
        **meta,
    }
    if entry.author:
        document["author"] = entry.author[:MAX_AUTHOR_CHARS]
    if url:
        document["url"] = url
    try:
        return parse_post(document, now=now, max_future_seconds=max_future_seconds)
    except InvalidRecordError as exc:
        return _reject(entry, index, "invalid", exc.reason)


def _absolute(link: str | None, base: str) -> str | None:
    """Return the link made absolute, or None if it is not a fit http(s) URL."""
    if not link or len(link) > MAX_URL_CHARS:
        return None
    try:
        url = urljoin(base, link.strip())
        check_http_url(url)
    except ValueError:
        return None
    return url if len(url) <= MAX_URL_CHARS else None


def _hash32(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "replace")).hexdigest()[:32]


def _reject(entry: FeedEntry, index: int, reason: str, detail: str) -> Rejected:
    return Rejected(index, reason, detail, orjson.dumps(asdict(entry))[:MAX_RAW_BYTES])


class RssFetcher:
    """Fetches an RSS or Atom feed (implements the Fetcher protocol).

    Args:
        options: The source.
        client: The HTTP client (default: one built from `options` and the
            hooks below).
        now: Wall clock as an aware datetime (fetch time of undated entries).
        clock: Monotonic seconds (rate limit).
        sleep: Awaitable sleep (retry waits, rate limit).
        rng: Random source of the backoff jitter.

    """

    def __init__(
        self,
        options: RssOptions,
        *,
        client: HttpClient | None = None,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.options = options
        self._now = now
        self.client = client or client_for(
            options, now=now, clock=clock, sleep=sleep, rng=rng
        )

    def __repr__(self) -> str:
        return f"RssFetcher(name={self.options.name!r})"

    async def fetch(self, cursor: str | None) -> Page:
        """Fetch the feed; entries already seen (ids in `cursor`) are duplicates.

        Raises:
            FetchError: The feed could not be fetched, parsed or was refused.

        """
        options = self.options
        state = decode_state(cursor)
        answer = await self.client.get(
            options.url,
            etag=state.etag,
            last_modified=state.last_modified,
            accept=(
                "application/rss+xml, application/atom+xml, application/rdf+xml, "
                "application/xml;q=0.9, text/xml;q=0.9, */*;q=0.1"
            ),
        )
        if answer.not_modified:
            return Page(cursor=None, more=False)
        try:
            entries = parse_feed(answer.body)
        except FeedError as exc:
            raise FetchError(
                options.name,
                options.url,
                f"{exc} ({answer.content_type or 'no Content-Type'})",
                status=answer.status,
            ) from None
        now = self._now()
        recent = RecentIds(RECENT_IDS, state.seen)
        keys: list[str] = []
        in_feed: set[str] = set()
        posts: list[Post] = []
        rejected: list[Rejected] = []
        duplicates = 0
        for index, entry in enumerate(entries):
            result = entry_to_post(
                entry,
                index,
                name=options.name,
                feed_url=options.url,
                now=now,
                max_future_seconds=options.max_future_seconds,
            )
            key = (
                raw_key(result.raw)
                if isinstance(result, Rejected)
                else id_key(result.id)
            )
            if key in recent or key in in_feed:
                duplicates += 1
            elif isinstance(result, Rejected):
                rejected.append(result)
            else:
                posts.append(result)
            keys.append(key)
            in_feed.add(key)
        recent.add(keys)
        new_state = PollState(
            etag=answer.etag,
            last_modified=answer.last_modified,
            seen=tuple(recent),
        )
        return Page(
            posts=tuple(posts),
            rejected=tuple(rejected),
            duplicates=duplicates,
            cursor=encode_state(new_state),
            more=False,
        )

    async def close(self) -> None:
        """Close the HTTP session."""
        await self.client.close()


def rss_options_from_config(
    source: RssSource,
    *,
    max_future_seconds: float | None = None,
    max_body_bytes: int | None = None,
    trust_env: bool = False,
) -> RssOptions:
    """Build the options of an ``rss`` entry of the sources file.

    Pure: header values are the resolved secrets; `interval`, `timeout` and
    `rate` become seconds and requests per second (no `rate`: 1/s).
    """
    extra: dict[str, Any] = {}
    if max_body_bytes is None:  # the entry's own limit, else the default
        max_body_bytes = source.max_body_bytes
    if max_body_bytes is not None:
        extra["max_body_bytes"] = max_body_bytes
    return RssOptions(
        name=source.name,
        url=source.url,
        interval_seconds=float(source.interval),
        headers={k: v.get_secret_value() for k, v in source.headers.items()},
        rate_per_second=source.rate.per_second if source.rate else 1.0,
        rate_burst=source.rate.burst if source.rate else 1,
        timeout_seconds=float(source.timeout),
        max_future_seconds=max_future_seconds,
        trust_env=trust_env,
        **extra,
    )
