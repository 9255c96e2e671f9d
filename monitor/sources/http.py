"""What the polling fetchers share: one bounded, polite HTTP GET per request.

:class:`HttpClient` holds one :class:`aiohttp.ClientSession` per source (opened
on the first request, closed by :meth:`HttpClient.close`) and applies, to every
request:

- the source's rate (a :class:`~monitor.sources.limits.TokenBucket`; retries
  take tokens too);
- a total timeout per attempt (connect, headers and body);
- a body limit enforced while reading: reading stops, and the request fails,
  as soon as the (decompressed) body passes ``max_body_bytes``;
- retries on timeouts, connection errors, 429 and 5xx, waiting a full-jitter
  exponential backoff (:func:`~monitor.sources.base.backoff_seconds`) or the
  server's ``Retry-After`` (seconds or an HTTP date, capped) when it gives one;
  a ``Retry-After`` longer than ``max_wait_seconds`` ends the request at once
  (:attr:`FetchError.retry_after` says how long to wait before the next poll);
- conditional GET: ``If-None-Match`` / ``If-Modified-Since`` from the
  validators of the last answer; 304 means nothing new.

Failures raise :class:`FetchError`, whose message names the source and the URL
without its query string (where API keys tend to live) and never a header.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

import aiohttp

from monitor.errors import MonitorError
from monitor.sources.base import backoff_seconds
from monitor.sources.limits import TokenBucket

if TYPE_CHECKING:
    from monitor.sources.http_poll import HttpPollOptions
    from monitor.sources.rss import RssOptions

log = logging.getLogger(__name__)

#: Statuses retried (besides timeouts and connection errors).
RETRY_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})
#: Longest ETag or Last-Modified value kept for the next conditional GET.
MAX_VALIDATOR_CHARS = 1024
#: What the fetchers say they are.
USER_AGENT = "monitor-source/1"

Sleep = Callable[[float], Awaitable[None]]
#: What aiohttp raises for a URL it cannot request (NonHttpUrlClientError
#: since aiohttp 3.10).
_INVALID_URL: tuple[type[Exception], ...] = (aiohttp.InvalidURL,) + tuple(
    getattr(aiohttp, name)
    for name in ("NonHttpUrlClientError",)
    if hasattr(aiohttp, name)
)


def safe_url(url: str) -> str:
    """Return ``url`` fit for a log line or an error: no user-info, no query.

    The query string is replaced by ``?…`` (it may carry an API key or a
    vendor cursor), the fragment is dropped, and the result is cut to 200
    characters.
    """
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        if ":" in host:
            host = f"[{host}]"
        if parts.port is not None:
            host = f"{host}:{parts.port}"
        query = "…" if parts.query else ""
        text = urlunsplit((parts.scheme, host, parts.path, query, ""))
    except ValueError:
        text = url.split("?", 1)[0].split("#", 1)[0].rsplit("@", 1)[-1]
    return text[:200]


class FetchError(MonitorError):
    """A page could not be fetched or read; the poll is retried later.

    Attributes:
        source: The source name.
        url: The URL without query string or user-info (see :func:`safe_url`).
        reason: What went wrong, in words an operator can act on.
        status: The HTTP status, if an answer came.
        retry_after: Seconds the server asked to wait (``Retry-After``), if any.

    """

    def __init__(
        self,
        source: str,
        url: str,
        reason: str,
        *,
        status: int | None = None,
        retry_after: float | None = None,
    ) -> None:
        self.source = source
        self.url = safe_url(url)
        self.reason = reason
        self.status = status
        self.retry_after = retry_after
        super().__init__(f"source {source!r}: GET {self.url}: {reason}")


@dataclass(frozen=True)
class Response:
    """A successful answer (200-299) or a 304.

    Attributes:
        status: The HTTP status.
        body: The body (empty for a 304), at most the client's limit.
        content_type: The media type, lower case (``""`` if none).
        etag: The ``ETag`` to send back as ``If-None-Match``, if any.
        last_modified: The ``Last-Modified`` to send back, if any.

    """

    status: int
    body: bytes
    content_type: str = ""
    etag: str | None = None
    last_modified: str | None = None

    @property
    def not_modified(self) -> bool:
        """True for a 304: nothing new since the validators sent."""
        return self.status == 304


class HttpClient:
    """One source's HTTP client: rate, timeout, body limit, retries, validators.

    Args:
        source: The source name (errors and logs name it).
        headers: Headers sent with every request (may hold secrets: they are
            never logged, put in an error or repr'd).
        rate_per_second: Requests per second at most (retries included).
        burst: Requests that may go at once before the rate applies.
        timeout_seconds: Total time of one attempt (connect, headers, body).
        retries: Attempts after the first on a timeout, a connection error,
            408, 425, 429 or 5xx.
        max_body_bytes: Largest body read; a larger one fails the request.
        backoff_base: First backoff step, seconds.
        backoff_cap: Longest backoff between attempts, seconds (at most
            ``max_wait_seconds``).
        retry_after_cap: Longest ``Retry-After`` honoured, seconds.
        max_wait_seconds: Longest wait between attempts inside one request; a
            ``Retry-After`` beyond it ends the request at once with a
            :class:`FetchError` whose ``retry_after`` the caller can honour
            between polls (where a stop does not have to wait for it).
        clock: Monotonic seconds, for the rate.
        sleep: Awaitable sleep (tests pass one that records).
        rng: Random source of the jitter.
        now: Wall clock (aware datetime), to read a ``Retry-After`` date.
        trust_env: Go through the proxies of ``HTTP_PROXY``, ``HTTPS_PROXY``
            and ``NO_PROXY`` (credentials from ``~/.netrc``); off, every
            request goes direct.

    """

    def __init__(
        self,
        source: str,
        *,
        headers: Mapping[str, str] | None = None,
        rate_per_second: float = 1.0,
        burst: int = 1,
        timeout_seconds: float = 10.0,
        retries: int = 3,
        max_body_bytes: int = 10 * 1024 * 1024,
        backoff_base: float = 1.0,
        backoff_cap: float = 60.0,
        retry_after_cap: float = 300.0,
        max_wait_seconds: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
        sleep: Sleep = asyncio.sleep,
        rng: random.Random | None = None,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
        trust_env: bool = False,
    ) -> None:
        if rate_per_second <= 0 or timeout_seconds <= 0 or max_body_bytes <= 0:
            raise ValueError("rate, timeout and body limit must be positive")
        self.source = source
        self._headers = dict(headers or {})
        self._bucket = TokenBucket(rate_per_second, max(1, burst))
        self.timeout_seconds = timeout_seconds
        self.retries = max(0, retries)
        self.max_body_bytes = max_body_bytes
        self.backoff_base, self.backoff_cap = backoff_base, backoff_cap
        self.retry_after_cap = retry_after_cap
        self.max_wait_seconds = max_wait_seconds
        self._clock, self._sleep, self._rng, self._now = clock, sleep, rng, now
        self._session: aiohttp.ClientSession | None = None
        self.trust_env = trust_env

    def __repr__(self) -> str:
        return f"HttpClient(source={self.source!r})"

    async def get(
        self,
        url: str,
        *,
        etag: str | None = None,
        last_modified: str | None = None,
        accept: str = "*/*",
    ) -> Response:
        """GET ``url``, retrying what may pass; return the answer or a 304.

        Args:
            url: The full URL.
            etag: Sent as ``If-None-Match``.
            last_modified: Sent as ``If-Modified-Since``.
            accept: The ``Accept`` header.

        Raises:
            FetchError: Once the retries are spent, at once for an answer that
                retrying cannot fix (4xx other than 408/425/429, a body over the
                limit), with ``retry_after`` set when the server gave one.

        """
        headers = {"Accept": accept, "User-Agent": USER_AGENT, **self._headers}
        if etag:
            headers["If-None-Match"] = etag
        if last_modified:
            headers["If-Modified-Since"] = last_modified
        attempt = 0
        while True:
            await self._take_token()
            try:
                return await self._attempt(url, headers)
            except _Retryable as exc:
                too_long = (exc.retry_after or 0.0) > self.max_wait_seconds
                if attempt >= self.retries or too_long:
                    tries = f"{attempt + 1} attempt{'s' if attempt else ''}"
                    later = (
                        f"; Retry-After {exc.retry_after:g} s"
                        if exc.retry_after is not None
                        else ""
                    )
                    raise FetchError(
                        self.source,
                        url,
                        f"{exc.reason} (after {tries}{later})",
                        status=exc.status,
                        retry_after=exc.retry_after,
                    ) from None
                wait = exc.retry_after
                if wait is None:
                    wait = backoff_seconds(
                        attempt,
                        base=self.backoff_base,
                        cap=min(self.backoff_cap, self.max_wait_seconds),
                        rng=self._rng,
                    )
                log.info(
                    "source %s: GET %s: %s; attempt %d again in %.1f s",
                    self.source,
                    safe_url(url),
                    exc.reason,
                    attempt + 2,
                    wait,
                )
                await self._sleep(wait)
                attempt += 1

    async def close(self) -> None:
        """Close the session (a later request opens a new one)."""
        if self._session is not None:
            session, self._session = self._session, None
            await session.close()

    async def _take_token(self) -> None:
        while True:
            wait = self._bucket.take(1, self._clock())
            if wait <= 0:
                return
            await self._sleep(wait)

    def _session_now(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=self.timeout_seconds),
                trust_env=self.trust_env,
            )
        return self._session

    async def _attempt(self, url: str, headers: Mapping[str, str]) -> Response:
        session = self._session_now()
        try:
            async with session.get(
                url, headers=headers, allow_redirects=True, max_redirects=5
            ) as answer:
                status = answer.status
                if status == 304:
                    return Response(status=304, body=b"")
                if status in RETRY_STATUSES:
                    wait = retry_after_seconds(
                        answer.headers.get("Retry-After"),
                        now=self._now(),
                        cap=self.retry_after_cap,
                    )
                    raise _Retryable(f"HTTP {status}", status=status, retry_after=wait)
                if not 200 <= status < 300:
                    raise FetchError(
                        self.source,
                        url,
                        f"HTTP {status} {answer.reason or ''}".strip(),
                        status=status,
                    )
                declared = answer.content_length
                if declared is not None and declared > self.max_body_bytes:
                    raise self._too_large(url, status)
                body = await self._read_at_most(answer, url)
                etag = answer.headers.get("ETag")
                modified = answer.headers.get("Last-Modified")
                return Response(
                    status=status,
                    body=body,
                    content_type=answer.content_type.lower(),
                    etag=etag if etag and len(etag) <= MAX_VALIDATOR_CHARS else None,
                    last_modified=(
                        modified
                        if modified and len(modified) <= MAX_VALIDATOR_CHARS
                        else None
                    ),
                )
        except (FetchError, _Retryable):
            raise
        except TimeoutError:
            raise _Retryable(
                f"no complete answer within {self.timeout_seconds:g} s"
            ) from None
        except aiohttp.TooManyRedirects:
            raise FetchError(self.source, url, "more than 5 redirects") from None
        except _INVALID_URL:
            raise FetchError(self.source, url, "not a valid http(s) URL") from None
        except (aiohttp.ClientError, OSError) as exc:
            raise _Retryable(f"connection failed ({type(exc).__name__})") from None

    async def _read_at_most(self, answer: aiohttp.ClientResponse, url: str) -> bytes:
        chunks: list[bytes] = []
        size = 0
        async for chunk in answer.content.iter_chunked(65_536):
            size += len(chunk)
            if size > self.max_body_bytes:
                raise self._too_large(url, answer.status)
            chunks.append(chunk)
        return b"".join(chunks)

    def _too_large(self, url: str, status: int) -> FetchError:
        return FetchError(
            self.source,
            url,
            f"the body is larger than {self.max_body_bytes:,} bytes "
            "(raise max_body_bytes if the source is right)",
            status=status,
        )


class _Retryable(Exception):
    """An attempt failed in a way another attempt may not."""

    def __init__(
        self,
        reason: str,
        *,
        status: int | None = None,
        retry_after: float | None = None,
    ) -> None:
        self.reason, self.status, self.retry_after = reason, status, retry_after
        super().__init__(reason)


def retry_after_seconds(
    header: str | None, *, now: datetime, cap: float = 300.0
) -> float | None:
    """Seconds to wait from a Retry-After header (seconds or HTTP date), capped.

    Returns None when the header is absent or unreadable; a date in the past
    gives 0.
    """
    if not header:
        return None
    text = header.strip()
    if text.isdigit():
        return min(cap, float(text[:12]))
    try:
        when = parsedate_to_datetime(text[:64])
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return min(cap, max(0.0, (when - now).total_seconds()))


def client_for(
    options: "HttpPollOptions | RssOptions",
    *,
    now: Callable[[], datetime],
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], Awaitable[None]] | None = None,
    rng: random.Random | None = None,
) -> HttpClient:
    """Build the HTTP client of one polled source from its options.

    ``now``, ``clock``, ``sleep`` and ``rng`` are the tests' hooks (wall clock,
    monotonic seconds, awaitable sleep, backoff jitter).
    """
    extra: dict[str, Any] = {} if sleep is None else {"sleep": sleep}
    return HttpClient(
        options.name,
        headers=options.headers,
        rate_per_second=options.rate_per_second,
        burst=options.rate_burst,
        timeout_seconds=options.timeout_seconds,
        retries=options.retries,
        max_body_bytes=options.max_body_bytes,
        clock=clock,
        rng=rng,
        now=now,
        trust_env=options.trust_env,
        **extra,
    )
