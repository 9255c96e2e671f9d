"""The ticket API over a real aiohttp server, on real Elasticsearch (noida-db)."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from subprocess import CompletedProcess
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from openapi_spec_validator import validate
from yarl import URL

from monitor.analysis.tickets.lifecycle import ACTIONS
from monitor.analysis.tickets.model import Trigger
from monitor.config.rules import RuleSet, load_rules
from monitor.local.embedded import EmbeddedServers, free_port
from monitor.services.ticketing import TicketService
from monitor.sinks.elasticsearch.tickets import TicketStore
from monitor.web.api import api_app
from monitor.web.auth import Authenticator, hash_token

pytestmark = pytest.mark.integration

T0 = datetime(2026, 11, 20, 13, 0, tzinfo=timezone(timedelta(hours=8)))
VIEWER, RESPONDER, ADMIN = "view-token", "respond-token", "admin-token"
TOKENS = (
    f"kibana:viewer:{hash_token(VIEWER)},王工:responder:{hash_token(RESPONDER)},"
    f"root:admin:{hash_token(ADMIN)}"
)
RULES = """\
topics:
  空调异味:
    keywords: [空调]
    rules:
      - {name: 负面声量, kind: negative_volume, threshold: 6}
teams:
  facilities: {members: [王工, 李工]}
routing: {default_team: facilities}
silences:
  - {id: S-file, topic: 空调异味, starts: 2026-11-01T00:00:00+08:00,
     expires: 2026-11-02T00:00:00+08:00, author: 小李, reason: 旧的}
"""


def trigger(minutes: float = 0) -> Trigger:
    start = T0 + timedelta(minutes=minutes)
    return Trigger(
        "空调异味",
        "负面声量",
        "negative_volume",
        None,
        start,
        start + timedelta(minutes=5),
        12.0,
        6.0,
    )


class Api:
    """A client of the API as mounted in the worker (under /api)."""

    def __init__(self, base: str, session: aiohttp.ClientSession) -> None:
        self.base, self.session = base, session

    async def call(
        self,
        method: str,
        path: str,
        token: str | None = None,
        *,
        body: Any = None,
        raw: bytes | None = None,
        params: dict[str, str] | None = None,
    ) -> tuple[int, Any]:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        if raw is not None:
            headers["Content-Type"] = "application/json"
        async with self.session.request(
            method,
            self.base + path,
            headers=headers,
            json=body if raw is None and body is not None else None,
            data=raw,
            params=params,
        ) as response:
            assert response.content_type == "application/json", await response.text()
            return response.status, await response.json()


async def serve(app: web.Application) -> tuple[web.AppRunner, str]:
    """Run ``app`` mounted under /api in a real server on a free port."""
    root = web.Application()
    root.add_subapp("/api", app)
    runner = web.AppRunner(root)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    return runner, f"http://127.0.0.1:{port}/api"


@pytest.fixture
def rules(tmp_path: Path) -> RuleSet:
    path = tmp_path / "rules.yaml"
    path.write_text(RULES, encoding="utf-8")
    return load_rules(path)


@pytest.fixture
async def service(
    noida: EmbeddedServers, rules: RuleSet
) -> AsyncIterator[TicketService]:
    assert noida.addresses is not None
    store = TicketStore.connect(noida.addresses.es_url, "ta" + uuid.uuid4().hex[:10])
    service = TicketService(store, lambda: rules, now=lambda: T0 + timedelta(hours=1))
    yield service
    await service.close()
    await store.close()


@pytest.fixture
async def api(service: TicketService) -> AsyncIterator[Api]:
    runner, base = await serve(api_app(service, Authenticator.from_spec(TOKENS)))
    async with aiohttp.ClientSession() as session:
        yield Api(base, session)
    await runner.cleanup()


@pytest.fixture
async def ticket_id(service: TicketService) -> str:
    decision = await service.handle_trigger(trigger())
    assert decision.ticket is not None
    return decision.ticket.ticket_id


def error(status: int, body: Any) -> tuple[int, str]:
    assert set(body) == {"error"} and body["error"]["status"] == status
    return status, body["error"]["message"]


async def test_no_token_or_a_wrong_one_is_401(api: Api, ticket_id: str) -> None:
    status, body = await api.call("GET", "/tickets")
    assert error(401, body)[0] == status == 401
    status, body = await api.call("GET", f"/tickets/{ticket_id}", "not-a-token")
    assert status == 401 and "unknown token" in error(401, body)[1]
    status, body = await api.call(
        "POST", f"/tickets/{ticket_id}/actions", "nope", body={"action": "acknowledge"}
    )
    assert status == 401


async def test_roles_limit_what_a_token_may_do(api: Api, ticket_id: str) -> None:
    status, body = await api.call(
        "POST", f"/tickets/{ticket_id}/actions", VIEWER, body={"action": "acknowledge"}
    )
    assert status == 403 and "responder" in error(403, body)[1]
    status, body = await api.call(
        "POST",
        "/silences",
        RESPONDER,
        body={"reason": "x", "topic": "t", "duration": "1h"},
    )
    assert status == 403 and "admin" in error(403, body)[1]
    status, _ = await api.call("GET", "/silences", VIEWER)
    assert status == 200


async def test_list_get_and_act_record_the_caller_in_the_audit_trail(
    api: Api, ticket_id: str
) -> None:
    status, body = await api.call("GET", "/tickets", VIEWER, params={"status": "open"})
    assert status == 200 and body["total"] == 1
    assert body["tickets"][0]["ticket_id"] == ticket_id
    status, body = await api.call(
        "GET", "/tickets", VIEWER, params={"status": "resolved,closed", "limit": "5"}
    )
    assert (status, body["total"], body["limit"]) == (200, 0, 5)

    status, body = await api.call(
        "POST",
        f"/tickets/{ticket_id}/actions",
        RESPONDER,
        body={"action": "acknowledge", "note": "在处理"},
    )
    assert status == 200 and body["ticket"]["status"] == "acknowledged"
    assert body["event"]["actor"] == "王工" and body["event"]["note"] == "在处理"
    status, body = await api.call(
        "POST",
        f"/tickets/{ticket_id}/actions",
        RESPONDER,
        body={"action": "transfer", "owner": "李工", "team": "facilities"},
    )
    assert status == 200 and body["ticket"]["owner"] == "李工"

    status, body = await api.call("GET", f"/tickets/{ticket_id}", VIEWER)
    assert status == 200 and body["ticket"]["revision"] == 3
    assert [(e["action"], e["actor"]) for e in body["events"]] == [
        ("open", "system"),
        ("acknowledge", "王工"),
        ("transfer", "王工"),
    ]
    assert body["events"][2]["details"]["to_owner"] == "李工"


async def test_unknown_ticket_or_silence_is_404(api: Api) -> None:
    status, body = await api.call("GET", "/tickets/T-missing-1", VIEWER)
    assert status == 404 and "T-missing-1" in error(404, body)[1]
    status, body = await api.call(
        "POST", "/tickets/T-missing-1/actions", RESPONDER, body={"action": "resolve"}
    )
    assert status == 404
    status, body = await api.call("DELETE", "/silences/S-missing", ADMIN)
    assert status == 404 and error(404, body)


async def test_invalid_transition_is_409_with_the_reason(
    api: Api, ticket_id: str
) -> None:
    status, body = await api.call(
        "POST", f"/tickets/{ticket_id}/actions", RESPONDER, body={"action": "close"}
    )
    message = error(409, body)[1]
    assert status == 409 and "cannot close" in message
    assert "only allowed from resolved" in message


@pytest.mark.parametrize(
    ("body", "raw", "names"),
    [
        (None, b"{not json", "JSON object"),
        (None, b"[1, 2]", "JSON object"),
        ({"note": "x"}, None, "action: required"),
        ({"action": "explode"}, None, "unknown action 'explode'"),
        ({"action": 7}, None, "action: must be non-empty text"),
        ({"action": "acknowledge", "owner": "李工"}, None, "owner: not a field"),
        ({"action": "assign", "owner": 5}, None, "owner: must be non-empty text"),
        ({"action": "comment", "note": ["x"]}, None, "note: must be text"),
    ],
)
async def test_bad_body_is_422_naming_the_field(
    api: Api, ticket_id: str, body: Any, raw: bytes | None, names: str
) -> None:
    status, answer = await api.call(
        "POST", f"/tickets/{ticket_id}/actions", RESPONDER, body=body, raw=raw
    )
    assert status == 422 and names in error(422, answer)[1]


@pytest.mark.parametrize(
    ("params", "names"),
    [
        ({"status": "lost"}, "status: unknown value 'lost'"),
        ({"priority": "P9"}, "priority"),
        ({"limit": "0"}, "limit"),
        ({"limit": "ten"}, "limit: must be a whole number"),
        ({"offset": "-1"}, "offset"),
    ],
)
async def test_bad_query_is_422(api: Api, params: dict[str, str], names: str) -> None:
    status, body = await api.call("GET", "/tickets", VIEWER, params=params)
    assert status == 422 and names in error(422, body)[1]


async def test_silences_through_the_api_suppress_and_can_be_ended(
    api: Api, service: TicketService
) -> None:
    status, body = await api.call(
        "POST",
        "/silences",
        ADMIN,
        body={"topic": "空调异味", "reason": "已知问题", "duration": "2h"},
    )
    assert status == 201 and body["silence"]["clock"] == "event"
    # Event time: the trigger's posts were published before the silence.
    assert (await service.handle_trigger(trigger())).outcome != "suppressed"
    event_silence = body["silence"]["silence_id"]
    status, _ = await api.call("DELETE", f"/silences/{event_silence}", ADMIN)
    assert status == 200
    status, body = await api.call(
        "POST",
        "/silences",
        ADMIN,
        body={
            "topic": "空调异味",
            "reason": "已知问题",
            "duration": "2h",
            "clock": "wall",
        },
    )
    assert status == 201 and body["silence"]["author"] == "root"
    silence_id = body["silence"]["silence_id"]
    assert (await service.handle_trigger(trigger())).outcome == "suppressed"
    status, body = await api.call(
        "GET", "/silences", VIEWER, params={"include_expired": "true"}
    )
    assert [(s["silence_id"], s["source"]) for s in body["silences"]] == [
        (silence_id, "api"),
        ("S-file", "rules"),
    ]
    status, body = await api.call("DELETE", "/silences/S-file", ADMIN)
    assert status == 409 and "rules file" in error(409, body)[1]
    status, body = await api.call("DELETE", f"/silences/{silence_id}", ADMIN)
    assert status == 200
    status, body = await api.call("GET", "/silences", VIEWER)
    assert body["silences"] == []
    for bad, names in [
        ({"reason": "x", "duration": "1h"}, "a silence needs one"),
        ({"reason": "x", "topic": "t"}, "expires_at or duration"),
        ({"reason": "x", "topic": "t", "duration": "soon"}, "duration"),
        ({"reason": "x", "topic": "t", "expires_at": "2026-01-01T00:00"}, "UTC offset"),
        ({"reason": "x", "topic": "t", "duration": "1h", "who": 1}, "who"),
    ]:
        status, body = await api.call("POST", "/silences", ADMIN, body=bad)
        assert status == 422 and names in error(422, body)[1], (bad, body)


async def test_openapi_is_valid_and_lists_every_route(
    api: Api, service: TicketService
) -> None:
    async with api.session.get(api.base + "/openapi.json") as response:
        assert response.status == 200
        document = await response.json()
    validate(document)
    assert document["servers"] == [{"url": "/api"}]
    app = api_app(service, Authenticator([]))
    routes = {
        (route.method.lower(), route.resource.canonical)
        for route in app.router.routes()
        if route.method != "HEAD" and route.resource is not None
    }
    documented = {
        (method, path)
        for path, operations in document["paths"].items()
        for method in operations
    }
    assert documented == routes
    action_schema = document["components"]["schemas"]["ActionRequest"]
    assert action_schema["properties"]["action"]["enum"] == list(ACTIONS)


async def test_health_needs_no_token(api: Api) -> None:
    status, body = await api.call("GET", "/health")
    assert status == 200 and body == {"status": "ok", "elasticsearch": True}


async def test_elasticsearch_down_is_503(rules: RuleSet) -> None:
    store = TicketStore.connect(
        f"http://127.0.0.1:{free_port()}", "down", request_timeout=2
    )
    service = TicketService(store, lambda: rules)
    runner, base = await serve(api_app(service, Authenticator.from_spec(TOKENS)))
    try:
        async with aiohttp.ClientSession() as session:
            api = Api(base, session)
            status, body = await api.call("GET", "/tickets", VIEWER)
            assert status == 503 and "Elasticsearch" in error(503, body)[1]
            status, body = await api.call(
                "POST", "/tickets/T-1/actions", RESPONDER, body={"action": "resolve"}
            )
            assert status == 503
            status, body = await api.call("GET", "/health")
            assert status == 503 and body["elasticsearch"] is False
    finally:
        await runner.cleanup()
        await store.close()


async def test_unknown_path_is_a_json_404(api: Api) -> None:
    status, body = await api.call("GET", "/nothing-here", VIEWER)
    assert status == 404 and error(404, body)


async def raw_request(base: str, head: bytes) -> tuple[int, dict[str, str], Any]:
    """Send ``head`` (request line and headers, as bytes) and read the answer."""
    url = URL(base)
    reader, writer = await asyncio.open_connection(url.host, url.port)
    writer.write(head + b"Host: x\r\nConnection: close\r\n\r\n")
    await writer.drain()
    answer = await reader.read()
    writer.close()
    await writer.wait_closed()
    top, _, payload = answer.partition(b"\r\n\r\n")
    status_line, *header_lines = top.decode("latin-1").split("\r\n")
    headers = dict(line.split(": ", 1) for line in header_lines)
    return int(status_line.split()[1]), headers, json.loads(payload)


@pytest.mark.parametrize(
    "authorization",
    [b"Bearer \xff", b"Bearer \xc3\x28", b"\xff\xfe", b"Bearer admin-token\x80"],
)
async def test_authorization_that_is_not_utf8_is_401_like_a_missing_one(
    api: Api, authorization: bytes
) -> None:
    path = URL(api.base).path.encode() + b"/tickets"
    missing = await raw_request(api.base, b"GET " + path + b" HTTP/1.1\r\n")
    sent = await raw_request(
        api.base,
        b"GET " + path + b" HTTP/1.1\r\nAuthorization: " + authorization + b"\r\n",
    )
    assert sent[0] == missing[0] == 401
    assert sent[2] == missing[2]
    assert sent[1]["WWW-Authenticate"] == missing[1]["WWW-Authenticate"] == "Bearer"


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("TRACE", "/tickets", {"GET", "HEAD"}),
        ("PATCH", "/tickets/T-1", {"GET", "HEAD"}),
        ("PUT", "/tickets/T-1/actions", {"POST"}),
        ("POST", "/health", {"GET", "HEAD"}),
        ("PUT", "/silences", {"GET", "HEAD", "POST"}),
        ("GET", "/silences/S-1", {"DELETE"}),
    ],
)
async def test_a_method_a_path_does_not_take_is_405_with_allow(
    api: Api, method: str, path: str, allowed: set[str]
) -> None:
    async with api.session.request(
        method, api.base + path, headers={"Authorization": f"Bearer {ADMIN}"}
    ) as response:
        assert response.status == 405
        assert set(response.headers["Allow"].split(",")) == allowed
        assert error(405, await response.json())


@pytest.mark.parametrize(
    ("fields", "names"),
    [
        ({"duration": "525531871929662s"}, "duration"),  # was a 500 (overflow)
        ({"duration": "1d1500m85955007876816d047080h99d"}, "duration"),
        ({"duration": "91d"}, "at most 90 days"),
        ({"duration": "2161h"}, "at most 90 days"),
        ({"duration": "90d1s"}, "at most 90 days"),
        ({"duration": "1h1h"}, "duration"),
        ({"duration": "0s"}, "duration"),
        ({"duration": 3600}, "duration: must be non-empty text"),
        ({"duration": "1h", "expires_at": None}, "expires_at: must be non-empty"),
        ({"expires_at": "2027-03-01T00:00:00+08:00"}, "expires_at: at most 90 days"),
        ({"expires_at": "9999-12-31T23:59:59-23:59"}, "expires_at: at most 90 days"),
        ({"expires_at": "2026-11-20T14:00:00+08:00"}, "expire in the future"),
        ({"duration": "1h", "starts_at": "9999-12-31T23:59:59-23:59"}, "starts_at"),
        ({"duration": "1h", "starts_at": "0001-01-01T00:00:00+23:59"}, "future"),
        (
            {"duration": "1h", "starts_at": "2027-02-19T00:00:00+08:00"},
            "starts_at: at most 90 days from now",
        ),
        (
            {
                "starts_at": "2026-12-01T00:00:00+08:00",
                "expires_at": "2026-11-30T00:00:00+08:00",
            },
            "expire",
        ),
        ({"duration": "1h", "reason": " \u3000\t"}, "reason: must be non-empty text"),
        ({"duration": "1h", "topic": None, "keyword": "异味"}, "topic: must be"),
    ],
)
async def test_silence_times_are_bounded_and_refused_with_422(
    api: Api, fields: dict[str, Any], names: str
) -> None:
    body = {"reason": "已知问题", "topic": "空调异味", **fields}
    status, answer = await api.call("POST", "/silences", ADMIN, body=body)
    assert status == 422 and names in error(422, answer)[1], answer


@pytest.mark.parametrize(
    "fields",
    [
        {"duration": "90d"},
        {"duration": "2160h"},
        {"duration": "89d23h59m59s"},
        {"duration": "1h30m"},
        {"expires_at": "2027-02-18T14:00:00+08:00"},  # now + 90 days
        {"duration": "1h", "starts_at": "2027-02-18T14:00:00+08:00"},
        {"duration": "2h", "starts_at": "2026-11-20T13:00:00+08:00"},  # started
    ],
)
async def test_silences_up_to_90_days_are_accepted(
    api: Api, fields: dict[str, Any]
) -> None:
    body = {"reason": "已知问题", "keyword": "异味", **fields}
    status, answer = await api.call("POST", "/silences", ADMIN, body=body)
    assert status == 201, answer
    silence = answer["silence"]
    start = datetime.fromisoformat(silence["starts_at"])
    end = datetime.fromisoformat(silence["expires_at"])
    assert timedelta(0) < end - start <= timedelta(days=90)


@pytest.mark.parametrize(
    ("body", "names"),
    [
        ({"action": "reopen"}, "note: reopen needs a note"),
        ({"action": "comment", "note": " \n"}, "note: comment needs a note"),
        ({"action": "assign", "team": "facilities"}, "owner: assign needs"),
        ({"action": "transfer"}, "owner or team: transfer needs"),
        ({"action": "transfer", "note": "x"}, "owner or team"),
        ({"action": "transfer", "team": None}, "team: must be non-empty text"),
        ({"action": "assign", "owner": " "}, "owner: must be non-empty text"),
        ({"action": "resolve", "owner": "李工"}, "owner: not a field of resolve"),
        ({"action": "acknowledge", "note": None}, "note: must be text"),
    ],
)
async def test_each_action_takes_the_fields_the_document_gives_it(
    api: Api, ticket_id: str, body: dict[str, Any], names: str
) -> None:
    status, answer = await api.call(
        "POST", f"/tickets/{ticket_id}/actions", RESPONDER, body=body
    )
    assert status == 422 and names in error(422, answer)[1], answer


@pytest.mark.parametrize(
    ("params", "names"),
    [
        ({"status": " open"}, "status: unknown value ' open'"),
        ({"status": "open,,closed"}, "status: unknown value ''"),
        ({"status": "open, closed"}, "unknown value ' closed'"),
        ({"priority": "p1"}, "priority: unknown value 'p1'"),
        ({"offset": ""}, "offset: must be a whole number"),
        ({"limit": "+5"}, "limit: must be a whole number"),
        ({"limit": "٥"}, "limit: must be a whole number"),
        ({"offset": "10000"}, "offset: must be 0-9999"),
        ({"limit": "501"}, "limit: must be 1-500"),
    ],
)
async def test_ticket_filters_are_exactly_what_the_document_says(
    api: Api, params: dict[str, str], names: str
) -> None:
    status, body = await api.call("GET", "/tickets", VIEWER, params=params)
    assert status == 422 and names in error(422, body)[1], body


async def test_a_page_at_the_end_of_the_result_window_is_cut(api: Api) -> None:
    status, body = await api.call(
        "GET", "/tickets", VIEWER, params={"offset": "9999", "limit": "500"}
    )
    assert (status, body["limit"], body["offset"]) == (200, 1, 9999)
    status, body = await api.call("GET", "/tickets", VIEWER, params={"status": ""})
    assert status == 200


async def test_include_expired_must_be_true_or_false(api: Api) -> None:
    status, body = await api.call(
        "GET", "/silences", VIEWER, params={"include_expired": "maybe"}
    )
    assert status == 422 and "include_expired" in error(422, body)[1]


# --- the command line -----------------------------------------------------------


def monitor(*args: str, env: dict[str, str], stdin: str = "") -> CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "monitor", *args],
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MONITOR_")}
    return {**env, **extra}


async def test_cli_lists_and_shows_tickets(
    noida: EmbeddedServers, service: TicketService, ticket_id: str
) -> None:
    await service.act(ticket_id, "acknowledge", "王工", note="收到")
    assert noida.addresses is not None
    env = clean_env(
        MONITOR_KAFKA_URL=noida.addresses.kafka_url,
        MONITOR_ES_URL=noida.addresses.es_url,
        MONITOR_INDEX_PREFIX=service.store.prefix,
    )
    listed = monitor("tickets", "list", "--status", "acknowledged", "--json", env=env)
    assert listed.returncode == 0, listed.stderr
    assert [t["ticket_id"] for t in json.loads(listed.stdout)] == [ticket_id]
    table = monitor("tickets", "list", env=env)
    assert table.returncode == 0 and "1 of 1 tickets" in table.stdout
    none = monitor("tickets", "list", "--status", "closed", "--json", env=env)
    assert json.loads(none.stdout) == []
    shown = monitor("tickets", "show", ticket_id, "--json", env=env)
    assert shown.returncode == 0, shown.stderr
    body = json.loads(shown.stdout)
    assert body["ticket"]["status"] == "acknowledged"
    assert [e["note"] for e in body["events"]][-1] == "收到"
    readable = monitor("tickets", "show", ticket_id, env=env)
    assert "audit trail" in readable.stdout and "acknowledge" in readable.stdout
    missing = monitor("tickets", "show", "T-missing-1", env=env)
    assert missing.returncode == 1 and "no ticket 'T-missing-1'" in missing.stderr


def test_cli_rules_check(tmp_path: Path) -> None:
    good = tmp_path / "good.yaml"
    good.write_text(RULES, encoding="utf-8")
    done = monitor("rules", "check", str(good), env=clean_env())
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.strip() == (
        f"{good}: OK: 1 topics, 1 rules, 1 teams, 0 channels, 1 silences, "
        "0 maintenance windows"
    )
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        RULES.replace("threshold: 6", "threshold: -6").replace(
            "members: [王工, 李工]", "members: []"
        ),
        encoding="utf-8",
    )
    done = monitor("rules", "check", str(bad), env=clean_env())
    assert done.returncode == 2
    problems = done.stdout.strip().splitlines()
    assert len(problems) == 2
    assert all(p.startswith(f"{bad} line ") for p in problems), problems
    assert "threshold" in done.stdout


def test_cli_tokens_hash() -> None:
    done = monitor("tokens", "hash", env=clean_env(), stdin=f"{RESPONDER}\n")
    assert done.returncode == 0 and done.stdout.strip() == hash_token(RESPONDER)
    done = monitor(
        "tokens", "hash", "--new", "--name", "ops", "--role", "admin", env=clean_env()
    )
    lines = dict(line.split(":", 1) for line in done.stdout.strip().splitlines())
    token, digest = lines["token"].strip(), lines["sha256"].strip()
    assert hash_token(token) == digest
    entry = lines["entry"].strip()
    assert entry == f"ops:admin:{digest}"
    assert Authenticator.from_spec(entry).authenticate(f"Bearer {token}").name == "ops"
    assert monitor("tokens", "hash", env=clean_env(), stdin="").returncode == 2
