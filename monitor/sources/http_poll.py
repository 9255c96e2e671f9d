"""HTTP JSON polling: a vendor API read page by page into posts.

:class:`HttpPollFetcher` implements :class:`~monitor.sources.base.Fetcher`:
each :meth:`~HttpPollFetcher.fetch` GETs one page (through
:class:`~monitor.sources.http.HttpClient`: rate, timeout, body limit, retries,
``Retry-After``, conditional GET), finds the list of items at the ``items``
dotted path, maps each item to a :class:`~monitor.records.Post` and returns a
:class:`~monitor.sources.base.Page` whose cursor is the fetcher's opaque state.

**The stored state** (:class:`PollState`, JSON, at most
:data:`MAX_STATE_BYTES`) holds the vendor cursor or the page number, the
``ETag`` / ``Last-Modified`` of the last answer (with a hash of the URL they
belong to) and hashes of the last :data:`RECENT_IDS` post ids. A page that
repeats items yields them as ``Page.duplicates``, not posts, even across a
restart, since the ids live in the stored state. A stored value that is not
such a state (a cursor saved by an older version) is read as a plain vendor
cursor (or page number), never as an error.

**Pagination.** By cursor: ``{cursor}`` in the URL is filled with the vendor
cursor (URL-encoded; empty on the first poll); the next one is read at the
``cursor`` dotted path. ``more`` is set when the page had items and the cursor
moved forward. A missing, empty or unchanged next cursor keeps the current one
(the same URL is polled again after the interval; what it repeats is dropped
as duplicates). A next cursor that goes back in time (both numbers, or both
ISO 8601 times, and the new one smaller) is not followed: the fetcher keeps the
current cursor, logs a warning and still delivers the page's new items. By
page: ``{page}`` is filled with the page number (from ``first_page``); a page
with items moves to the next (``more``); an empty page ends the poll and the
next poll starts again at the last page that had items, so items appended to
it later are not missed.

**A rejected item** (no value at a mapped path, or not a valid post) becomes a
:class:`~monitor.sources.base.Rejected` with the item's JSON, for the dead
letters; the rest of the page goes on.
"""

from __future__ import annotations

import hashlib
import logging
import math
import random
import re
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal
from urllib.parse import quote

import orjson

from monitor.errors import InvalidRecordError
from monitor.records import MAX_DEAD_LETTER_PAYLOAD_BYTES, Post, parse_post
from monitor.sources.base import Page, Rejected
from monitor.sources.config import Const, HttpPollSource
from monitor.sources.http import FetchError, HttpClient, Response, client_for
from monitor.sources.http import retry_after_seconds as retry_after_seconds
from monitor.sources.limits import RecentIds

log = logging.getLogger(__name__)

MAX_PATH_DEPTH = 16
#: Largest stored state, in bytes of JSON.
MAX_STATE_BYTES = 64 * 1024
#: Post ids remembered (as 16-hex-digit hashes) to drop repeated items.
RECENT_IDS = 2000
#: Longest vendor cursor kept, in characters.
MAX_VENDOR_CURSOR_CHARS = 4096
#: Most items read from one page; a larger page fails the fetch.
MAX_ITEMS_PER_PAGE = 10_000
#: A rejected item's JSON is kept up to what a dead letter carries.
MAX_RAW_BYTES = MAX_DEAD_LETTER_PAYLOAD_BYTES
#: Post fields a mapping must fill.
REQUIRED_FIELDS = ("id", "text", "published_at")
#: Epoch numbers above this are read as milliseconds (year 5138 in seconds).
_MILLISECONDS_ABOVE = 1e11

_STATE_VERSION = 1
_HEX16 = re.compile(r"[0-9a-f]{16}")


@dataclass(frozen=True)
class HttpPollOptions:
    """One http_poll source, close to its YAML entry.

    Attributes:
        name: The source name; post ids are `<name>:<vendor id>`.
        url: URL template; `{cursor}` and `{page}` are filled in.
        interval_seconds: Seconds between polls once no page is ready.
        items: Dotted path to the list of items in the response.
        cursor: Dotted path to the next cursor (None: page pagination or none).
        map: Post field -> dotted path into an item.
        constants: Post field -> constant value (`source` defaults to `name`).
        headers: Resolved secret headers; never logged (hidden from repr).
        pagination: "cursor" or "page".
        max_pages_per_poll: Pages fetched in one poll at most.
        rate_per_second: Requests per second at most (token bucket).
        rate_burst: Requests that may go at once before the rate applies.
        timeout_seconds: Total timeout of one request.
        retries: Retries of one request on 429/5xx/timeouts.
        max_body_bytes: Largest response body accepted.
        first_page: The first page number of page pagination.
        max_future_seconds: Refuse posts published further ahead of the fetch
            time (None: no check).
        trust_env: Go through the proxies of the environment (the
            ``http_proxy_from_env`` setting).

    """

    name: str
    url: str
    interval_seconds: float = 30.0
    items: str = "items"
    cursor: str | None = None
    map: Mapping[str, str] = field(default_factory=dict)
    constants: Mapping[str, Any] = field(default_factory=dict)
    headers: Mapping[str, str] = field(default_factory=dict, repr=False)
    pagination: Literal["cursor", "page"] = "cursor"
    max_pages_per_poll: int = 10
    rate_per_second: float = 5.0
    rate_burst: int = 1
    timeout_seconds: float = 10.0
    retries: int = 3
    max_body_bytes: int = 10 * 1024 * 1024
    first_page: int = 1
    max_future_seconds: float | None = None
    trust_env: bool = False


def lookup(item: Any, path: str) -> Any:
    """Follow a dotted path (`user.nick`, `items.0.id`) into decoded JSON.

    Raises:
        KeyError: A step is missing or the path is deeper than MAX_PATH_DEPTH.

    """
    steps = path.split(".")
    if len(steps) > MAX_PATH_DEPTH:
        raise KeyError(f"path deeper than {MAX_PATH_DEPTH}: {path}")
    value = item
    for step in steps:
        if isinstance(value, Mapping) and step in value:
            value = value[step]
        elif isinstance(value, list) and step.isdigit() and int(step) < len(value):
            value = value[int(step)]
        else:
            raise KeyError(f"no {step!r} in {path!r}")
    return value


def id_key(post_id: str) -> str:
    """Return the 16-hex-digit hash under which a post id is remembered."""
    return hashlib.blake2b(
        post_id.encode("utf-8", "replace"), digest_size=8
    ).hexdigest()


def raw_key(raw: bytes) -> str:
    """Return the 16-hex-digit hash under which a rejected item is remembered."""
    return hashlib.blake2b(raw, digest_size=8, person=b"rejected").hexdigest()


@dataclass(frozen=True)
class PollState:
    """What an http_poll source stores as its cursor (see the module doc).

    Attributes:
        vendor: The vendor cursor to fill `{cursor}` with (None: the first).
        page: The page number to fetch next (page pagination).
        etag: The ETag of the last answer to `validated`.
        last_modified: Its Last-Modified.
        validated: Hash of the URL the validators belong to.
        seen: Hashes of recent post ids (:func:`id_key`), oldest first.

    """

    vendor: str | None = None
    page: int | None = None
    etag: str | None = None
    last_modified: str | None = None
    validated: str | None = None
    seen: tuple[str, ...] = ()


def encode_state(state: PollState) -> str:
    """Encode a state as JSON of at most MAX_STATE_BYTES (oldest ids dropped)."""
    data: dict[str, Any] = {"v": _STATE_VERSION}
    if state.vendor is not None:
        data["cursor"] = state.vendor[:MAX_VENDOR_CURSOR_CHARS]
    if state.page is not None:
        data["page"] = state.page
    for key, value in (
        ("etag", state.etag),
        ("modified", state.last_modified),
        ("for", state.validated),
    ):
        if value is not None:
            data[key] = value[:1024]
    seen = list(state.seen[-RECENT_IDS:])
    data["seen"] = seen
    encoded = orjson.dumps(data)
    while len(encoded) > MAX_STATE_BYTES and seen:
        # Each id takes 19 bytes; drop enough of the oldest in one step.
        excess = (len(encoded) - MAX_STATE_BYTES) // 19 + 1
        del seen[:excess]
        encoded = orjson.dumps(data)
    return encoded.decode("utf-8")


def decode_state(
    text: str | None, *, pagination: Literal["cursor", "page"] = "cursor"
) -> PollState:
    """Read a stored state; never raises.

    A value that is not a state this module wrote (plain text, other JSON, a
    cursor saved by an older version) is read as a plain vendor cursor (page
    pagination: a page number if it is one); a value longer than
    MAX_STATE_BYTES, or a vendor cursor longer than MAX_VENDOR_CURSOR_CHARS, as
    no cursor (the source starts again; the recent ids are lost with it).
    """
    if not text:
        return PollState()
    if len(text) > MAX_STATE_BYTES:
        log.warning("stored cursor of %d characters ignored", len(text))
        return PollState()
    try:
        data = orjson.loads(text)
    except orjson.JSONDecodeError:
        data = None
    if not isinstance(data, dict) or data.get("v") != _STATE_VERSION:
        return _plain_cursor(text, pagination)

    def text_at(key: str, limit: int) -> str | None:
        value = data.get(key)
        return value if isinstance(value, str) and len(value) <= limit else None

    page = data.get("page")
    seen = data.get("seen")
    return PollState(
        vendor=text_at("cursor", MAX_VENDOR_CURSOR_CHARS),
        page=(
            page
            if isinstance(page, int)
            and not isinstance(page, bool)
            and 0 <= page < 10**9
            else None
        ),
        etag=text_at("etag", 1024),
        last_modified=text_at("modified", 1024),
        validated=text_at("for", 64),
        seen=tuple(
            key
            for key in (seen if isinstance(seen, list) else [])[-RECENT_IDS:]
            if isinstance(key, str) and _HEX16.fullmatch(key)
        ),
    )


def _plain_cursor(text: str, pagination: str) -> PollState:
    value = text.strip()
    if pagination == "page":
        if value.isdigit() and len(value) < 10:
            return PollState(page=int(value))
        return PollState()
    if len(text) > MAX_VENDOR_CURSOR_CHARS:
        return PollState()
    return PollState(vendor=text)


def cursor_goes_back(current: str | None, new: str) -> bool:
    """Return True if `new` is before `current`: both numbers, or both ISO times.

    Cursors of other shapes (opaque tokens) never go back.
    """
    if not current:
        return False
    old_key, new_key = _order_key(current), _order_key(new)
    if old_key is None or new_key is None or old_key[0] != new_key[0]:
        return False
    return new_key[1] < old_key[1]


def _order_key(value: str) -> tuple[str, float] | None:
    text = value.strip()
    if len(text) > 64:
        return None
    try:
        number = float(text)
    except ValueError:
        pass
    else:
        return ("number", number) if math.isfinite(number) else None
    if len(text) < 10 or not text[:4].isdigit():
        return None
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return ("time", when.timestamp())


def fill_url(template: str, *, cursor: str = "", page: int | None = None) -> str:
    """Fill `{cursor}` and `{page}` in a URL template, URL-encoding the values."""
    url = template.replace("{cursor}", quote(cursor, safe=""))
    if page is not None:
        url = url.replace("{page}", str(page))
    return url


def map_item(
    item: Any, index: int, options: HttpPollOptions, *, now: datetime
) -> Post | Rejected:
    """Map one item of a page to a post, or say why it cannot be one.

    Each post field in `options.map` is read at its dotted path (a missing
    optional field is left out); `options.constants` are added; `source`
    defaults to the source name; the id becomes `<name>:<vendor id>`. A number
    at `published_at` is read as Unix seconds (milliseconds above 1e11).

    Never raises: every failure is a :class:`Rejected` with reason ``mapping``
    (the item does not fit the map) or ``invalid`` (not a valid post).
    """
    try:
        return _map_item(item, index, options, now)
    except Exception as exc:  # noqa: BLE001 - one bad item never stops a page
        return Rejected(
            index, "mapping", f"cannot map item: {type(exc).__name__}", _raw(item)
        )


def _map_item(
    item: Any, index: int, options: HttpPollOptions, now: datetime
) -> Post | Rejected:
    def reject(reason: str, detail: str) -> Rejected:
        return Rejected(index, reason, detail, _raw(item))

    if not isinstance(item, dict):
        return reject("mapping", f"the item is {_kind(item)}, not an object")
    document: dict[str, Any] = {}
    for post_field, path in options.map.items():
        try:
            value = lookup(item, path)
        except KeyError:
            value = None
        if value is None:
            if post_field in REQUIRED_FIELDS:
                return reject("mapping", f"{post_field}: nothing at {path!r}")
            continue
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            return reject(
                "mapping", f"{post_field}: {_kind(value)} at {path!r}, not a value"
            )
        document[post_field] = value
    document.update(options.constants)
    vendor_id = document.get("id")
    if vendor_id is None or isinstance(vendor_id, float) or not str(vendor_id).strip():
        return reject("mapping", "id: empty or not a string or integer")
    document["id"] = f"{options.name}:{vendor_id}"
    published = document.get("published_at")
    if isinstance(published, int | float):
        seconds = published / 1000 if published > _MILLISECONDS_ABOVE else published
        try:
            document["published_at"] = datetime.fromtimestamp(seconds, UTC).isoformat()
        except (OverflowError, OSError, ValueError):
            return reject("invalid", f"published_at: {published!r} is not a time")
    for text_field in ("text", "author", "url", "topic", "source"):
        value = document.get(text_field)
        if isinstance(value, int | float):
            document[text_field] = str(value)
    if not document.get("source"):
        document["source"] = options.name
    try:
        return parse_post(
            document, now=now, max_future_seconds=options.max_future_seconds
        )
    except InvalidRecordError as exc:
        return reject("invalid", exc.reason)


def _raw(item: Any) -> bytes:
    try:
        raw = orjson.dumps(item)
    except (TypeError, orjson.JSONEncodeError):
        raw = repr(item).encode("utf-8", "replace")
    return raw[:MAX_RAW_BYTES]


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "a list"
    return f"a {type(value).__name__}"


def _url_hash(url: str) -> str:
    return hashlib.blake2b(url.encode("utf-8", "replace"), digest_size=8).hexdigest()


class HttpPollFetcher:
    """Fetches pages of a JSON API (implements the Fetcher protocol).

    Args:
        options: The source.
        client: The HTTP client (default: one built from `options` and the
            hooks below).
        now: Wall clock as an aware datetime (post validation, Retry-After).
        clock: Monotonic seconds (rate limit).
        sleep: Awaitable sleep (retry waits, rate limit).
        rng: Random source of the backoff jitter.

    """

    def __init__(
        self,
        options: HttpPollOptions,
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
        return f"HttpPollFetcher(name={self.options.name!r})"

    async def fetch(self, cursor: str | None) -> Page:
        """Fetch the page after `cursor` (the stored state; None: from the start).

        Raises:
            FetchError: The page could not be fetched, was not JSON, or had no
                list at the items path (run_source counts it and retries).

        """
        options = self.options
        state = decode_state(cursor, pagination=options.pagination)
        by_page = options.pagination == "page"
        page_number = (state.page or options.first_page) if by_page else None
        url = fill_url(options.url, cursor=state.vendor or "", page=page_number)
        url_key = _url_hash(url)
        same_url = state.validated == url_key
        answer = await self.client.get(
            url,
            etag=state.etag if same_url else None,
            last_modified=state.last_modified if same_url else None,
            accept="application/json",
        )
        if answer.not_modified:
            return Page(cursor=None, more=False)
        document, items = self._items(url, answer)
        now = self._now()
        recent = RecentIds(RECENT_IDS, state.seen)
        posts: list[Post] = []
        rejected: list[Rejected] = []
        duplicates = 0
        page_keys: list[str] = []
        in_page: set[str] = set()
        for index, item in enumerate(items):
            result = map_item(item, index, options, now=now)
            # A rejected item is remembered by its bytes, so that a page served
            # again does not send it to the dead letters again.
            key = (
                raw_key(result.raw)
                if isinstance(result, Rejected)
                else id_key(result.id)
            )
            if key in recent or key in in_page:
                duplicates += 1
            elif isinstance(result, Rejected):
                rejected.append(result)
            else:
                posts.append(result)
            page_keys.append(key)
            in_page.add(key)
        recent.add(page_keys)

        vendor, page, more = state.vendor, page_number, False
        if by_page:
            assert page_number is not None
            if items:
                page, more = page_number + 1, True
            else:
                page = max(options.first_page, page_number - 1)
        elif options.cursor is not None:
            following = self._next_cursor(url, answer, document, options.cursor)
            if following is not None and following != (state.vendor or ""):
                if cursor_goes_back(state.vendor, following):
                    log.warning(
                        "source %s: the next cursor %.64r is before the current "
                        "%.64r; keeping the current one",
                        options.name,
                        following,
                        state.vendor,
                    )
                else:
                    vendor, more = following, bool(items)
        next_url = fill_url(options.url, cursor=vendor or "", page=page)
        keep_validators = _url_hash(next_url) == url_key
        new_state = PollState(
            vendor=vendor,
            page=page,
            etag=answer.etag if keep_validators else None,
            last_modified=answer.last_modified if keep_validators else None,
            validated=url_key if keep_validators else None,
            seen=tuple(recent),
        )
        return Page(
            posts=tuple(posts),
            rejected=tuple(rejected),
            duplicates=duplicates,
            cursor=encode_state(new_state),
            more=more,
        )

    def _items(self, url: str, answer: Response) -> tuple[Any, Sequence[Any]]:
        name = self.options.name
        try:
            document = orjson.loads(answer.body)
        except orjson.JSONDecodeError as exc:
            raise FetchError(
                name,
                url,
                f"the answer is not valid JSON "
                f"({answer.content_type or 'no Content-Type'}): {str(exc)[:120]}",
                status=answer.status,
            ) from None
        try:
            items = lookup(document, self.options.items)
        except KeyError:
            raise FetchError(
                name,
                url,
                f"no list at the items path {self.options.items!r} "
                f"(the answer is {_kind(document)})",
                status=answer.status,
            ) from None
        if not isinstance(items, list):
            raise FetchError(
                name,
                url,
                f"the items path {self.options.items!r} holds {_kind(items)}, "
                "not a list",
                status=answer.status,
            )
        if len(items) > MAX_ITEMS_PER_PAGE:
            raise FetchError(
                name,
                url,
                f"{len(items):,} items in one page; at most {MAX_ITEMS_PER_PAGE:,}",
                status=answer.status,
            )
        return document, items

    def _next_cursor(
        self, url: str, answer: Response, document: Any, path: str
    ) -> str | None:
        try:
            value = lookup(document, path)
        except KeyError:
            return None
        if value is None or value == "":
            return None
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise FetchError(
                self.options.name,
                url,
                f"the cursor path {path!r} holds {_kind(value)}, not a value",
                status=answer.status,
            )
        text = str(value)
        if len(text) > MAX_VENDOR_CURSOR_CHARS:
            raise FetchError(
                self.options.name,
                url,
                f"the next cursor is longer than {MAX_VENDOR_CURSOR_CHARS} characters",
                status=answer.status,
            )
        return text

    async def close(self) -> None:
        """Close the HTTP session."""
        await self.client.close()


def options_from_config(
    source: HttpPollSource,
    *,
    max_future_seconds: float | None = None,
    max_body_bytes: int | None = None,
    trust_env: bool = False,
) -> HttpPollOptions:
    """Build the options of an ``http_poll`` entry of the sources file.

    Pure. `map` is split into dotted paths and constants (``{const: v}``);
    header values are the resolved secrets; `interval`, `timeout` and `rate`
    become seconds and requests per second (no `rate`: 5/s). Pagination is by
    page when the URL has `{page}` and no `cursor` path is given, else by
    cursor.
    """
    paths: dict[str, str] = {}
    constants: dict[str, Any] = {}
    for post_field, value in source.map.items():
        if isinstance(value, Const):
            constants[post_field] = value.const
        else:
            paths[post_field] = value
    by_page = source.cursor is None and "{page}" in source.url
    extra: dict[str, Any] = {}
    if max_body_bytes is None:  # the entry's own limit, else the default
        max_body_bytes = source.max_body_bytes
    if max_body_bytes is not None:
        extra["max_body_bytes"] = max_body_bytes
    return HttpPollOptions(
        name=source.name,
        url=source.url,
        interval_seconds=float(source.interval),
        items=source.items,
        cursor=source.cursor,
        map=paths,
        constants=constants,
        headers={k: v.get_secret_value() for k, v in source.headers.items()},
        pagination="page" if by_page else "cursor",
        rate_per_second=source.rate.per_second if source.rate else 5.0,
        rate_burst=source.rate.burst if source.rate else 1,
        timeout_seconds=float(source.timeout),
        max_future_seconds=max_future_seconds,
        trust_env=trust_env,
        **extra,
    )
