"""``monitor dashboards install`` against a Kibana stand-in and a real noida-db.

Kibana itself cannot run on the local Elasticsearch-protocol server, so a
local aiohttp receiver takes its place: it parses the multipart body the way
Kibana's import route does (one ``file`` part, an ``.ndjson`` file name, one
JSON saved object per line), checks the ``overwrite=true`` query, the
``kbn-xsrf`` header, the space path and the API key, resolves every
reference against the file and the objects already saved (as Kibana does, so
an out-of-order import fails), and answers with Kibana's JSON. The index
templates go to the real noida-db server.
"""

from __future__ import annotations

import asyncio
import json
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiokafka.admin import AIOKafkaAdminClient
from click.testing import CliRunner, Result
from elasticsearch import Elasticsearch

from monitor.cli import cli
from monitor.local.embedded import EmbeddedServers, free_port
from monitor.settings import Settings
from monitor.topics import bootstrap_servers, topic_partitions
from tests.integration.conftest import Stack

pytestmark = pytest.mark.integration

API_KEY = "aW50ZWdyYXRpb246dGVzdC1rZXk="
FILES = ["data-views.ndjson", "pr-dashboard.ndjson", "oncall-dashboard.ndjson"]


class KibanaStandIn:
    """Kibana's ``POST [/s/<space>]/api/saved_objects/_import`` on a local port.

    Attributes:
        saved: ``(space, type, id)`` -> saved object, as imported.
        imports: ``(space, file name, object count)`` per accepted request.
        problems: Why a request was refused (a test asserts there are none).
        refuse: Object id -> error message to answer for it (``unknown``).

    """

    def __init__(self) -> None:
        self.saved: dict[tuple[str, str, str], dict[str, Any]] = {}
        self.imports: list[tuple[str, str, int]] = []
        self.problems: list[str] = []
        self.refuse: dict[str, str] = {}
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._loop = asyncio.new_event_loop()
        self._started = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)

    def __enter__(self) -> KibanaStandIn:
        self._thread.start()
        assert self._started.wait(10), "the Kibana stand-in did not start"
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    def _serve(self) -> None:
        asyncio.set_event_loop(self._loop)
        app = web.Application()
        app.router.add_post("/api/saved_objects/_import", self._import)
        app.router.add_post("/s/{space}/api/saved_objects/_import", self._import)
        runner = web.AppRunner(app)
        self._loop.run_until_complete(runner.setup())
        site = web.TCPSite(runner, "127.0.0.1", self.port)
        self._loop.run_until_complete(site.start())
        self._started.set()
        self._loop.run_forever()
        self._loop.run_until_complete(runner.cleanup())

    def _refuse(self, status: int, message: str) -> web.Response:
        self.problems.append(message)
        error = {400: "Bad Request", 401: "Unauthorized", 415: "Unsupported Media Type"}
        body = {"statusCode": status, "error": error[status], "message": message}
        return web.json_response(body, status=status)

    async def _import(self, request: web.Request) -> web.Response:
        space = request.match_info.get("space", "default")
        if request.headers.get("Authorization") != f"ApiKey {API_KEY}":
            return self._refuse(401, "[security_exception]: missing authentication")
        if request.headers.get("kbn-xsrf") != "true":
            return self._refuse(400, "Request must contain a kbn-xsrf header.")
        if request.query.get("overwrite") != "true" or len(request.query) != 1:
            return self._refuse(400, f"want overwrite=true, got {request.query_string}")
        if request.content_type != "multipart/form-data":
            return self._refuse(415, f"Unsupported Media Type {request.content_type}")
        reader = await request.multipart()
        part = await reader.next()
        if part is None or getattr(part, "name", None) != "file":
            return self._refuse(
                400, "[request body.file]: expected value of type [Stream]"
            )
        filename = part.filename or ""  # type: ignore[union-attr]
        if not filename.endswith(".ndjson"):
            return self._refuse(400, f"Invalid file extension {filename}")
        content = (await part.read()).decode("utf-8")  # type: ignore[union-attr]
        if await reader.next() is not None:
            return self._refuse(400, "more than one part")
        objects = []
        for number, line in enumerate(content.split("\n"), start=1):
            if not line:
                continue
            try:
                obj = json.loads(line)
            except ValueError:
                return self._refuse(400, f"{filename} line {number}: not JSON")
            if not {"type", "id", "attributes", "references"} <= obj.keys():
                return self._refuse(400, f"{filename} line {number}: not an object")
            objects.append(obj)
        self.imports.append((space, filename, len(objects)))
        return web.json_response(self._save(space, objects))

    def _save(self, space: str, objects: list[dict[str, Any]]) -> dict[str, Any]:
        in_file = {(o["type"], o["id"]) for o in objects}
        errors, results = [], []
        for obj in objects:
            missing = [
                {"type": ref["type"], "id": ref["id"]}
                for ref in obj["references"]
                if (ref["type"], ref["id"]) not in in_file
                and (space, ref["type"], ref["id"]) not in self.saved
            ]
            title = obj["attributes"].get("title", "")
            head = {
                "id": obj["id"],
                "type": obj["type"],
                "title": title,
                "meta": {"title": title},
            }
            if missing:
                errors.append(
                    {
                        **head,
                        "error": {"type": "missing_references", "references": missing},
                    }
                )
            elif obj["id"] in self.refuse:
                error = {
                    "type": "unknown",
                    "message": self.refuse[obj["id"]],
                    "statusCode": 400,
                }
                errors.append({**head, "error": error})
            else:
                self.saved[(space, obj["type"], obj["id"])] = obj
                results.append({**head, "overwrite": True})
        answer: dict[str, Any] = {
            "success": not errors,
            "successCount": len(results),
            "successResults": results,
            "warnings": [],
        }
        if errors:
            answer["errors"] = errors
        return answer


@pytest.fixture
def kibana() -> Iterator[KibanaStandIn]:
    with KibanaStandIn() as stand_in:
        yield stand_in


def install(args: list[str], env: dict[str, str | None]) -> Result:
    base: dict[str, str | None] = {"MONITOR_KAFKA_URL": None, "MONITOR_ES_URL": None}
    return CliRunner().invoke(
        cli, ["dashboards", "install", *args], obj={}, env={**base, **env}
    )


def test_install_imports_every_file_into_the_space_and_puts_missing_templates(
    kibana: KibanaStandIn, noida: EmbeddedServers, tmp_path: Path
) -> None:
    assert noida.addresses is not None
    es_url = noida.addresses.es_url
    prefix = f"dash-{uuid.uuid4().hex[:8]}"
    key_file = tmp_path / "kibana-api-key"
    key_file.write_text(API_KEY + "\n")
    args = ["--kibana", kibana.url, "--space", "ops", "--api-key-file", str(key_file)]
    env: dict[str, str | None] = {"MONITOR_INDEX_PREFIX": prefix}

    first = install([*args, "--es", es_url], env)

    assert first.exit_code == 0, first.output
    assert kibana.problems == []
    # The data views first: the charts' references resolve against them.
    assert kibana.imports[0][:2] == ("ops", "data-views.ndjson")
    assert sorted((space, name) for space, name, _ in kibana.imports) == sorted(
        ("ops", name) for name in FILES
    )
    saved = dict(kibana.saved)
    kinds = [kind for _, kind, _ in saved]
    assert kinds.count("index-pattern") == 5 and kinds.count("dashboard") == 2
    titles = {
        obj["attributes"]["title"]
        for obj in saved.values()
        if obj["type"] == "index-pattern"
    }
    assert titles == {
        f"{prefix}-posts-*",
        f"{prefix}-counts-*",
        f"{prefix}-bursts",
        f"{prefix}-tickets",
        f"{prefix}-ticket-events-*",
    }
    names = [f"{prefix}-{n}" for n in ("posts", "counts", "bursts", "tickets")]
    names += [f"{prefix}-ticket-events", f"{prefix}-silences"]
    for name in names:
        assert f"index template {name} created" in first.output
    es = Elasticsearch(es_url, request_timeout=30)
    try:
        for name in names:
            assert es.indices.exists_index_template(name=name), name
        mapping = es.indices.get_index_template(name=f"{prefix}-tickets")
        (template,) = mapping["index_templates"]
        assert template["index_template"]["index_patterns"] == [f"{prefix}-tickets"]
    finally:
        es.close()
    assert API_KEY not in first.output

    # A second run changes nothing: templates stay, objects are overwritten.
    second = install([*args, "--es", es_url], env)

    assert second.exit_code == 0, second.output
    for name in names:
        assert f"index template {name} already present" in second.output
    assert len(kibana.imports) == 2 * len(FILES) and kibana.problems == []
    assert kibana.saved == saved


def test_an_object_kibana_refuses_is_shown_and_the_exit_is_non_zero(
    kibana: KibanaStandIn,
) -> None:
    kibana.refuse["monitor-oncall"] = "Error: [panelsJSON]: could not parse panels"

    result = install(["--kibana", kibana.url, "--api-key", API_KEY], {})

    assert result.exit_code == 1, result.output
    assert "index templates not checked" in result.output
    assert "oncall-dashboard.ndjson: 16 imported, 1 refused" in result.output
    assert (
        'dashboard monitor-oncall "预警值班 On-call: 工单与 SLA tickets and SLA": '
        "unknown: Error: [panelsJSON]: could not parse panels (400)"
    ) in result.output
    assert [space for space, _, _ in kibana.imports] == ["default"] * len(FILES)
    assert kibana.problems == []


def test_a_wrong_api_key_is_refused_without_printing_it(kibana: KibanaStandIn) -> None:
    result = install(["--kibana", kibana.url, "--api-key", "d3Jvbmc6a2V5"], {})

    assert result.exit_code == 1
    assert "Kibana refused the import (401): [security_exception]" in result.output
    assert "d3Jvbmc6a2V5" not in result.output
    assert kibana.saved == {}


def test_files_out_of_order_would_miss_their_data_views(
    kibana: KibanaStandIn, tmp_path: Path
) -> None:
    # Kibana resolves references against the file and saved objects only:
    # the dashboards alone, into an empty space, miss their data views.
    source = Path(__file__).resolve().parents[2] / "dashboards" / "kibana"
    (tmp_path / "pr-dashboard.ndjson").write_bytes((source / FILES[1]).read_bytes())

    result = install(
        ["--kibana", kibana.url, "--api-key", API_KEY, "--objects", str(tmp_path)], {}
    )

    assert result.exit_code == 1
    assert "missing_references: index-pattern monitor-posts" in result.output


def _partitions(kafka_url: str, names: list[str]) -> dict[str, int]:
    """Partition count of each named topic that exists, from the broker."""

    async def describe() -> dict[str, int]:
        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers(kafka_url))
        await admin.start()
        try:
            existing = set(await admin.list_topics())
            present = [name for name in names if name in existing]
            topics = await admin.describe_topics(present) if present else []
            return {t["topic"]: len(t["partitions"]) for t in topics}
        finally:
            await admin.close()

    return asyncio.run(describe())


def test_topics_are_made_with_their_partitions_before_the_import(
    kibana: KibanaStandIn, noida: EmbeddedServers, tmp_path: Path
) -> None:
    """The stack's one-shot set-up: topics, then templates, then dashboards."""
    assert noida.addresses is not None
    stack = Stack(noida.addresses, tmp_path)
    try:
        env: dict[str, str | None] = {
            k: v for k, v in stack.env.items() if k.startswith("MONITOR_")
        }
        env["MONITOR_TOPIC_PARTITIONS"] = "3"
        settings = Settings.load(env={k: v for k, v in env.items() if v})
        wanted = topic_partitions(settings)
        assert wanted[stack.posts_topic] == 3
        assert _partitions(noida.addresses.kafka_url, list(wanted)) == {}

        result = install(
            ["--kibana", kibana.url, "--api-key", API_KEY, "--topics"], env
        )

        assert result.exit_code == 0, result.output
        assert _partitions(noida.addresses.kafka_url, list(wanted)) == wanted
        assert f"{stack.posts_topic} (3)" in result.output
        assert "index template" in result.output and kibana.problems == []
        # Again: the topics are there, nothing changes.
        again = install(["--kibana", kibana.url, "--api-key", API_KEY, "--topics"], env)
        assert again.exit_code == 0, again.output
        assert _partitions(noida.addresses.kafka_url, list(wanted)) == wanted
    finally:
        stack.close()


def test_topics_without_a_kafka_address_is_a_usage_error(
    kibana: KibanaStandIn,
) -> None:
    result = install(["--kibana", kibana.url, "--topics"], {})

    assert result.exit_code == 2
    assert "--topics needs MONITOR_KAFKA_URL" in result.output
    assert kibana.imports == []
