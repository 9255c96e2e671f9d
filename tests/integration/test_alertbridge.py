"""A real Alertmanager posts to a real ``monitor alert-bridge`` process, which
signs and forwards to a local DingTalk stand-in that checks the signature the
way DingTalk does (same HMAC, timestamp within an hour)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from monitor.local.embedded import free_port
from monitor.sinks.notifiers.payloads import dingtalk_sign
from tests.support import wait_until

pytestmark = pytest.mark.integration

SECRET = "SEC-integration-secret"
TOKEN = "alertmanager-to-bridge"


class DingTalk:
    """DingTalk's custom robot endpoint, signature check included."""

    def __init__(self) -> None:
        self.messages: list[dict[str, Any]] = []
        self.refused: list[str] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's hook name
                url = urllib.parse.urlsplit(self.path)
                query = dict(urllib.parse.parse_qsl(url.query))
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                problem = outer.check(url.path, query)
                if problem:
                    outer.refused.append(problem)
                    reply = {"errcode": 310000, "errmsg": problem}
                else:
                    outer.messages.append(body)
                    reply = {"errcode": 0, "errmsg": "ok"}
                data = json.dumps(reply).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @staticmethod
    def check(path: str, query: dict[str, str]) -> str:
        if path != "/robot/send" or query.get("access_token") != "robot-token":
            return "bad access token"
        timestamp = int(query.get("timestamp", "0"))
        if abs(time.time() * 1000 - timestamp) > 3_600_000:
            return "timestamp too far from now"
        if query.get("sign") != dingtalk_sign(SECRET, timestamp):
            return "sign not match"
        return ""


def _start(
    args: list[str], log: Path, ready_url: str, what: str
) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        process = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT)

    def ready() -> bool:
        if process.poll() is not None:
            raise AssertionError(f"{what} exited:\n{log.read_text()[-2000:]}")
        try:
            with urllib.request.urlopen(ready_url, timeout=1) as reply:
                return reply.status == 200
        except OSError:
            return False

    wait_until(ready, timeout=30, what=what, interval=0.1)
    return process


@pytest.fixture
def dingtalk() -> Iterator[DingTalk]:
    robot = DingTalk()
    yield robot
    robot.server.shutdown()
    robot.server.server_close()


def test_alertmanager_page_reaches_dingtalk_signed_through_the_bridge(
    tmp_path: Path, dingtalk: DingTalk
) -> None:
    alertmanager = shutil.which("prometheus-alertmanager") or shutil.which(
        "alertmanager"
    )
    assert alertmanager, "Alertmanager is missing (make system-deps installs it)"
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    (secrets / "dingtalk_url").write_text(
        f"{dingtalk.url}/robot/send?access_token=robot-token\n"
    )
    (secrets / "dingtalk_secret").write_text(SECRET)
    (secrets / "token").write_text(TOKEN)
    bridge_port, manager_port = free_port(), free_port()
    bridge_config = tmp_path / "alertbridge.yml"
    bridge_config.write_text(
        "listen: {host: 127.0.0.1, port: 1}\n"
        "token_file: secrets/token\n"
        "receivers:\n"
        "  - name: oncall\n"
        "    kind: dingtalk\n"
        "    url_file: secrets/dingtalk_url\n"
        "    secret_file: secrets/dingtalk_secret\n"
    )
    manager_config = tmp_path / "alertmanager.yml"
    manager_config.write_text(
        "route:\n"
        "  receiver: oncall-dingtalk\n"
        "  group_by: [alertname]\n"
        "  group_wait: 0s\n"
        "receivers:\n"
        "  - name: oncall-dingtalk\n"
        "    webhook_configs:\n"
        f"      - url: http://127.0.0.1:{bridge_port}/dingtalk/oncall\n"
        "        http_config:\n"
        "          authorization:\n"
        f"            credentials_file: {secrets / 'token'}\n"
    )
    processes = []
    try:
        processes.append(
            _start(
                [
                    sys.executable,
                    "-m",
                    "monitor",
                    "alert-bridge",
                    "--config",
                    str(bridge_config),
                    "--port",
                    str(bridge_port),
                ],
                tmp_path / "bridge.log",
                f"http://127.0.0.1:{bridge_port}/-/healthy",
                "the alert bridge",
            )
        )
        processes.append(
            _start(
                [
                    alertmanager,
                    f"--config.file={manager_config}",
                    f"--storage.path={tmp_path / 'am'}",
                    f"--web.listen-address=127.0.0.1:{manager_port}",
                    "--cluster.listen-address=",
                ],
                tmp_path / "alertmanager.log",
                f"http://127.0.0.1:{manager_port}/-/ready",
                "Alertmanager",
            )
        )
        alert = [
            {
                "labels": {
                    "alertname": "MonitorWorkerDown",
                    "severity": "page",
                    "instance": "worker-1:6066",
                    "job": "monitor",
                },
                "annotations": {
                    "summary": "monitor worker worker-1:6066 is not answering "
                    "/metrics [x](https://evil.example)"
                },
            }
        ]
        request = urllib.request.Request(
            f"http://127.0.0.1:{manager_port}/api/v2/alerts",
            data=json.dumps(alert).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=5) as reply:
            assert reply.status == 200

        wait_until(
            lambda: dingtalk.messages or dingtalk.refused,
            timeout=20,
            what="the signed message at the DingTalk stand-in",
        )
        assert dingtalk.refused == []
        (message,) = dingtalk.messages
        assert message["msgtype"] == "markdown"
        assert message["markdown"]["title"] == "[FIRING:1] MonitorWorkerDown"
        text = message["markdown"]["text"]
        assert "monitor worker worker-1:6066 is not answering /metrics" in text
        assert "https://evil" not in text and "[x]" not in text
        assert "instance=worker-1:6066" in text
    finally:
        for process in reversed(processes):
            process.terminate()
            process.wait(10)
