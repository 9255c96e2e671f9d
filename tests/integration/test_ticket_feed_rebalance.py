"""The ticket feed works while the worker's consumer group is still settling.

Faust starts its services only once the worker has joined its consumer group,
which takes up to the rebalance timeout (a minute) when a member is slow to
rejoin. The feed must not wait for that: a console connected to a worker that
is still joining hears the other workers' changes, and a change made through
it reaches them. Here the first worker is frozen (SIGSTOP) so the second's
join cannot complete, and the second's ticket stream must greet anyway.
"""

from __future__ import annotations

import http.client
import os
import signal
import socket
import time
from pathlib import Path

import pytest

from monitor.local.embedded import EmbeddedServers, free_port
from monitor.web.auth import hash_token
from tests.integration.conftest import Stack
from tests.support import wait_until

pytestmark = pytest.mark.integration

VIEWER = "feed-viewer-token"


def _hello_within(web_url: str, seconds: float) -> bool:
    """Whether ``/api/stream`` says hello within ``seconds``."""
    host, port = web_url.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=seconds)
    deadline = time.monotonic() + seconds
    try:
        connection.request(
            "GET", "/api/stream", headers={"Authorization": f"Bearer {VIEWER}"}
        )
        stream = connection.getresponse()
        assert stream.status == 200, stream.status
        while time.monotonic() < deadline:
            raw = stream.readline()
            if not raw:
                return False
            if raw.startswith(b"event: hello"):
                return True
        return False
    except (TimeoutError, socket.timeout):
        return False
    finally:
        connection.close()


def test_a_worker_still_joining_its_group_streams_ticket_changes(
    noida: EmbeddedServers, tmp_path: Path
) -> None:
    assert noida.addresses is not None
    stack = Stack(noida.addresses, tmp_path)
    stack.env["MONITOR_API_TOKENS"] = f"viewer:viewer:{hash_token(VIEWER)}"
    first = stack.worker()
    try:
        first.start()
        # Tickets (a Faust service) starts once the group has settled.
        wait_until(
            lambda: "[^--Tickets]: Starting" in first.log_path.read_text(),
            timeout=90,
            what="the first worker to settle in its group",
        )
        assert first.process is not None
        os.kill(first.process.pid, signal.SIGSTOP)  # a member that cannot rejoin
        second = stack.worker(MONITOR_WEB_PORT=str(free_port())).start()
        greeted = _hello_within(second.web_url, 20)
        log = second.log_path.read_text()
        assert greeted, f"no hello within 20 s:\n{second.log_tail(40)}"
        # The scenario held: the second worker had not joined its group yet.
        assert "[^--Tickets]: Starting" not in log, "the group settled too soon"
        assert "ticket feed: following" in log
    finally:
        if first.process is not None and first.process.poll() is None:
            first.process.kill()
            first.process.wait()
        stack.close()
