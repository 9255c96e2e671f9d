"""Browser tests of the console: real headless Chromium (Debian's
``/usr/bin/chromium``, driven by Playwright) against two real ``monitor
worker`` processes on the local noida-db servers, sharing one incident.

One worker pair, one replay of the sample feed and one browser serve the
whole module (module-scoped fixtures), so the file runs in about a minute.
Screenshots go to ``tests/artifacts/`` (not committed).
"""

from __future__ import annotations

import http.client
import json
import shutil
import socket
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from monitor.analysis.tickets.model import incident_fingerprint
from monitor.local.embedded import EmbeddedServers, free_port
from monitor.local.receivers import LocalReceivers
from monitor.web.auth import hash_token
from tests.integration.conftest import Stack, WorkerProcess, noida  # noqa: F401
from tests.support import wait_until

ROOT = Path(__file__).resolve().parents[2]
FEED = ROOT / "samples" / "feed.jsonl"
RULES = ROOT / "examples" / "rules.yaml"
ARTIFACTS = ROOT / "tests" / "artifacts"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]

RESPONDER = "duty-token-for-the-console-tests"
VIEWER = "viewer-token-for-the-console-tests"
RESPONDER_NAME = "duty"
VIEWER_NAME = "watcher"
INCIDENT = incident_fingerprint("topic=空调异味")


class ApiFailure(Exception):
    """An API call answered an error; ``status`` and ``body`` say which."""

    def __init__(self, status: int, body: Any) -> None:
        super().__init__(f"{status}: {body}")
        self.status = status
        self.body = body


@dataclass
class Console:
    """The two workers (same servers, other web ports) and the incident's ticket."""

    stack: Stack
    first: WorkerProcess
    second: WorkerProcess
    ticket_id: str

    @property
    def url(self) -> str:
        return self.first.web_url + "/console/"

    def api(
        self,
        path: str,
        body: dict[str, Any] | None = None,
        *,
        token: str = RESPONDER,
        worker: WorkerProcess | None = None,
    ) -> Any:
        base = (worker or self.first).web_url
        request = urllib.request.Request(
            f"{base}/api{path}",
            data=None if body is None else json.dumps(body).encode(),
            headers={
                "Authorization": f"Bearer {token}",
                "Content-Type": "application/json",
            },
            method="GET" if body is None else "POST",
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return json.loads(response.read())
        except urllib.error.HTTPError as exc:
            raise ApiFailure(exc.code, json.loads(exc.read() or b"null")) from None


def _tickets(stack: Stack) -> list[dict[str, Any]]:
    index = f"{stack.index_prefix}-tickets"
    if not stack.es.indices.exists(index=index):
        return []
    stack.es.indices.refresh(index=index)
    hits = stack.es.search(index=index, size=1000, query={"match_all": {}})
    return [hit["_source"] for hit in hits["hits"]["hits"]]


@pytest.fixture(scope="module")
def console(
    noida: EmbeddedServers,  # noqa: F811
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Console]:
    """Two workers on one stack; the sample feed replayed until its ticket opens."""
    assert noida.addresses is not None
    stack = Stack(noida.addresses, tmp_path_factory.mktemp("console"))
    receivers = LocalReceivers().start()  # the rules' channels deliver here
    stack.env.update(
        receivers.env(),
        MONITOR_RULES=str(RULES),
        MONITOR_IDLE_CLOSE_SECONDS="3",
        MONITOR_API_TOKENS=(
            f"{RESPONDER_NAME}:responder:{hash_token(RESPONDER)},"
            f"{VIEWER_NAME}:viewer:{hash_token(VIEWER)}"
        ),
    )
    try:
        first = stack.worker().start()
        stack.monitor("replay", str(FEED))
        found = wait_until(
            lambda: [t for t in _tickets(stack) if t["fingerprint"] == INCIDENT],
            timeout=120,
            what="the sample incident's ticket",
        )
        # The second worker joins once the ticket is open: a consumer group
        # of two starting together waits out Faust's rebalance first.
        second = stack.worker(MONITOR_WEB_PORT=str(free_port())).start()
        console = Console(stack, first, second, found[0]["ticket_id"])
        # The tests watch the second worker's changes arrive through the first:
        # make sure that path works before the browser looks for it.
        _second_reaches_first(console)
        yield console
    finally:
        stack.close()
        receivers.stop()


def _second_reaches_first(console: Console, timeout: float = 90) -> None:
    """Wait until a change through the second worker streams from the first.

    Fails with both workers' logs if it does not within ``timeout`` seconds.
    """
    host, port = console.first.web_url.removeprefix("http://").split(":")
    # Longer than the stream's 15 s pings: a read that times out means the
    # stream went silent, which ends the check (a timed-out socket file
    # cannot be read again).
    connection = http.client.HTTPConnection(host, int(port), timeout=30)
    deadline = time.monotonic() + timeout
    note = f"feed check {time.time_ns()}"
    try:
        connection.request(
            "GET", "/api/stream", headers={"Authorization": f"Bearer {RESPONDER}"}
        )
        stream = connection.getresponse()
        assert stream.status == 200, stream.status
        said_hello = sent = False
        started, lines, ended = time.monotonic(), 0, "deadline"
        while time.monotonic() < deadline:
            try:
                raw = stream.readline()
            except (TimeoutError, socket.timeout):
                ended = "silent for 30 s"
                break
            if not raw:
                ended = "the stream ended"
                break
            line = raw.decode()
            lines += 1
            if line.startswith("event: hello"):
                said_hello = True
            if said_hello and not sent:
                console.api(
                    f"/tickets/{quoted(console.ticket_id)}/actions",
                    {"action": "comment", "note": note},
                    worker=console.second,
                )
                sent = True
            if note in line:
                return
        pytest.fail(
            f"a change through the second worker did not stream from the first "
            f"(hello: {said_hello}, sent: {sent}, {lines} lines read, "
            f"{ended} after {time.monotonic() - started:.1f} s)\n"
            f"first worker:\n{console.first.log_tail(60)}\n"
            f"second worker:\n{console.second.log_tail(60)}"
        )
    finally:
        connection.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """One headless Chromium for the module; its absence fails the tests."""
    if not CHROMIUM.exists() or shutil.which(str(CHROMIUM)) is None:
        pytest.fail(
            f"Chromium is missing: no executable {CHROMIUM}. The console's browser "
            "tests need Debian's chromium package (make system-deps)."
        )
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS
        )
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture(scope="module")
def artifacts() -> Path:
    """Where screenshots go (tests/artifacts/, not committed)."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS


def quoted(text: str) -> str:
    """URL-quote a path segment."""
    return urllib.parse.quote(text, safe="")
