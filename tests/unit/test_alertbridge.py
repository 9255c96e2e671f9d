"""The Alertmanager → DingTalk/Feishu signing bridge (monitor.ops.alertbridge)."""

from __future__ import annotations

import json
import urllib.parse
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from monitor.ops.alertbridge import (
    BridgeConfig,
    BridgeConfigError,
    Receiver,
    create_app,
    dingtalk_message,
    feishu_card,
    load_config,
)
from monitor.sinks.notifiers.payloads import dingtalk_sign, feishu_sign

NOW = 1_780_000_000.5
SECRET = "SECtest-secret"
TOKEN = "bridge-token"


def notification(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "version": "4",
        "groupKey": '{}:{alertname="MonitorWorkerDown"}',
        "truncatedAlerts": 0,
        "status": "firing",
        "receiver": "oncall-dingtalk",
        "groupLabels": {"alertname": "MonitorWorkerDown"},
        "commonLabels": {"alertname": "MonitorWorkerDown", "severity": "page"},
        "commonAnnotations": {},
        "externalURL": "http://alertmanager.example:9093",
        "alerts": [
            {
                "status": "firing",
                "labels": {
                    "alertname": "MonitorWorkerDown",
                    "severity": "page",
                    "instance": "worker-1:6066",
                    "job": "monitor",
                },
                "annotations": {
                    "summary": "monitor worker worker-1:6066 is not answering /metrics"
                },
                "startsAt": "2026-12-05T13:00:00.000Z",
                "endsAt": "0001-01-01T00:00:00Z",
                "generatorURL": "http://prometheus.example:9090/graph?g0.expr=up",
                "fingerprint": "abc",
            }
        ],
    }
    body.update(overrides)
    return body


def test_dingtalk_markdown_lists_the_alerts() -> None:
    message = dingtalk_message(notification())
    assert message["msgtype"] == "markdown"
    assert message["markdown"]["title"] == "[FIRING:1] MonitorWorkerDown"
    text = message["markdown"]["text"]
    assert "monitor worker worker-1:6066 is not answering /metrics" in text
    assert "instance=worker-1:6066" in text
    assert "[Alertmanager](http://alertmanager.example:9093)" in text
    assert "(http://prometheus.example:9090/graph?g0.expr=up)" in text


def test_label_and_annotation_text_cannot_forge_markup_or_links() -> None:
    hostile = '[click](https://evil.example) <at user_id="all"> **x** @all\n# head'
    body = notification()
    body["alerts"][0]["labels"]["instance"] = hostile
    body["alerts"][0]["annotations"]["summary"] = hostile
    body["alerts"][0]["generatorURL"] = "javascript:alert(1)"
    body["commonLabels"]["alertname"] = "](https://evil.example)"
    for text in (
        dingtalk_message(body)["markdown"]["text"],
        json.dumps(feishu_card(body), ensure_ascii=False),
    ):
        assert "https://evil" not in text
        assert "[click]" not in text
        assert "<at" not in text
        assert "**x**" not in text
        assert "\n# head" not in text
        assert "javascript:" not in text
        assert "https：//evil.example" in text  # defanged, still readable


def test_many_alerts_are_cut_and_counted() -> None:
    alert = notification()["alerts"][0]
    body = notification(alerts=[alert] * 25)
    text = dingtalk_message(body)["markdown"]["text"]
    assert text.count("is not answering") == 20
    assert "and 5 more" in text


def test_resolved_feishu_card_is_green_and_signed() -> None:
    body = notification(status="resolved")
    body["alerts"][0]["status"] = "resolved"
    card = feishu_card(body, secret=SECRET, timestamp=1_780_000_000)
    assert card["msg_type"] == "interactive"
    assert card["card"]["header"]["template"] == "green"
    assert card["card"]["header"]["title"]["content"] == "[RESOLVED] MonitorWorkerDown"
    assert card["timestamp"] == "1780000000"
    assert card["sign"] == feishu_sign(SECRET, 1_780_000_000)
    assert "已恢复" in card["card"]["elements"][0]["text"]["content"]


def test_dingtalk_mentions_only_on_firing() -> None:
    firing = dingtalk_message(notification(), at_mobiles=["13800000000"])
    assert firing["at"]["atMobiles"] == ["13800000000"]
    assert firing["markdown"]["text"].endswith("@13800000000")
    resolved = dingtalk_message(notification(status="resolved"), at_mobiles=["1"])
    assert resolved["at"]["atMobiles"] == []


def test_config_reads_secrets_from_files(tmp_path: Path) -> None:
    (tmp_path / "url").write_text(
        "https://oapi.dingtalk.com/robot/send?access_token=t\n"
    )
    (tmp_path / "secret").write_text(SECRET + "\n")
    (tmp_path / "token").write_text(TOKEN)
    config_file = tmp_path / "bridge.yml"
    config_file.write_text(
        "listen: {host: 127.0.0.1, port: 9999}\n"
        "token_file: token\n"
        "receivers:\n"
        "  - {name: oncall, kind: dingtalk, url_file: url, secret_file: secret}\n"
        "  - {name: oncall, kind: feishu, url_file: url}\n"
    )
    config = load_config(config_file)
    assert config.port == 9999 and config.token == TOKEN
    ding = config.receivers[("dingtalk", "oncall")]
    assert ding.secret == SECRET and ding.url.endswith("access_token=t")
    assert config.receivers[("feishu", "oncall")].secret is None
    assert SECRET not in repr(config)

    config_file.write_text(
        "receivers:\n  - {name: oncall, kind: dingtalk, url_file: missing}\n"
    )
    with pytest.raises(BridgeConfigError, match="missing"):
        load_config(config_file)
    config_file.write_text(
        "receivers:\n  - {name: oncall, kind: dingtalk, url: 'https://x.example'}\n"
    )
    with pytest.raises(BridgeConfigError, match="unknown keys"):
        load_config(config_file)


class Robot:
    """A DingTalk/Feishu stand-in that checks the signatures."""

    def __init__(self) -> None:
        self.received: list[tuple[str, dict[str, str], Any]] = []
        self.reply: dict[str, Any] = {"errcode": 0, "errmsg": "ok"}

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.json()
        query = dict(request.query)
        self.received.append((request.path, query, body))
        return web.json_response(self.reply)


@pytest.fixture
async def robot() -> AsyncIterator[tuple[Robot, str]]:
    robot = Robot()
    app = web.Application()
    app.router.add_post("/{path:.*}", robot.handle)
    server = TestServer(app)
    await server.start_server()
    yield robot, str(server.make_url(""))
    await server.close()


@pytest.fixture
async def bridge(robot: tuple[Robot, str]) -> AsyncIterator[TestClient[Any, Any]]:
    _, base = robot
    config = BridgeConfig(
        receivers={
            ("dingtalk", "oncall"): Receiver(
                "dingtalk", "oncall", f"{base}/robot/send?access_token=t", SECRET
            ),
            ("feishu", "oncall"): Receiver(
                "feishu", "oncall", f"{base}/open-apis/bot/v2/hook/x", SECRET
            ),
        },
        token=TOKEN,
    )
    client = TestClient(TestServer(create_app(config, clock=lambda: NOW)))
    await client.start_server()
    yield client
    await client.close()


AUTH = {"Authorization": f"Bearer {TOKEN}"}


async def test_bridge_signs_and_posts_to_dingtalk(
    bridge: TestClient[Any, Any], robot: tuple[Robot, str]
) -> None:
    reply = await bridge.post("/dingtalk/oncall", json=notification(), headers=AUTH)
    assert reply.status == 200, await reply.text()
    ((path, query, body),) = robot[0].received
    assert path == "/robot/send"
    assert query["access_token"] == "t"
    assert query["timestamp"] == str(int(NOW * 1000))
    assert query["sign"] == dingtalk_sign(SECRET, int(NOW * 1000))
    assert body["markdown"]["title"] == "[FIRING:1] MonitorWorkerDown"


async def test_bridge_signs_feishu_cards(
    bridge: TestClient[Any, Any], robot: tuple[Robot, str]
) -> None:
    robot[0].reply = {"code": 0, "msg": "success"}
    reply = await bridge.post("/feishu/oncall", json=notification(), headers=AUTH)
    assert reply.status == 200, await reply.text()
    ((_, _, body),) = robot[0].received
    assert body["sign"] == feishu_sign(SECRET, int(NOW))
    assert body["msg_type"] == "interactive"


@pytest.mark.parametrize(
    ("path", "headers", "body", "status"),
    [
        ("/dingtalk/oncall", {}, notification(), 401),
        ("/dingtalk/oncall", {"Authorization": "Bearer wrong"}, notification(), 401),
        ("/dingtalk/nobody", AUTH, notification(), 404),
        ("/dingtalk/oncall", AUTH, {"version": "3", "alerts": []}, 400),
        ("/dingtalk/oncall", AUTH, notification(alerts="x"), 400),
    ],
)
async def test_bridge_refuses_bad_requests(
    bridge: TestClient[Any, Any],
    robot: tuple[Robot, str],
    path: str,
    headers: dict[str, str],
    body: dict[str, Any],
    status: int,
) -> None:
    reply = await bridge.post(path, json=body, headers=headers)
    assert reply.status == status
    assert robot[0].received == []


@pytest.mark.parametrize(
    ("robot_reply", "status"),
    [
        ({"errcode": 310000, "errmsg": "sign not match"}, 424),
        ({"errcode": 130101, "errmsg": "send too fast"}, 502),
    ],
)
async def test_robot_refusals_map_to_retry_or_not(
    bridge: TestClient[Any, Any],
    robot: tuple[Robot, str],
    robot_reply: dict[str, Any],
    status: int,
) -> None:
    robot[0].reply = robot_reply
    reply = await bridge.post("/dingtalk/oncall", json=notification(), headers=AUTH)
    assert reply.status == status  # Alertmanager retries 5xx only


def test_example_config_names_the_receivers_alertmanager_posts_to() -> None:
    repo = Path(__file__).resolve().parents[2] / "dashboards" / "alertmanager"
    import yaml

    bridge = yaml.safe_load((repo / "alertbridge.yml").read_text(encoding="utf-8"))
    served = {f"/{r['kind']}/{r['name']}" for r in bridge["receivers"]}
    manager = yaml.safe_load((repo / "alertmanager.yml").read_text(encoding="utf-8"))
    posted = {
        urllib.parse.urlsplit(hook["url"]).path
        for receiver in manager["receivers"]
        for hook in receiver.get("webhook_configs", [])
        if "alertbridge" in hook["url"]
    }
    assert posted == served == {"/dingtalk/oncall", "/feishu/oncall"}
