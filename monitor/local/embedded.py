"""The embedded default: a local noida-db server speaking Kafka and Elasticsearch.

When no Kafka or Elasticsearch address is configured, a command starts the
noida-db binary (from the PyPI package) as a child process on free loopback
ports, with its data under the data dir, waits until both protocols answer,
and stops it cleanly on exit. A second command run while one is up attaches
to it (the addresses are in ``<data_dir>/embedded.json``) instead of starting
another.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import socket
import stat
import subprocess
import time
import urllib.request
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path

from monitor.errors import EmbeddedServerError

log = logging.getLogger(__name__)

STATE_FILE = "embedded.json"


@dataclass(frozen=True)
class ServerAddresses:
    """Where the servers answer.

    Attributes:
        kafka_url: e.g. ``kafka://127.0.0.1:40123``.
        es_url: e.g. ``http://127.0.0.1:40124``.

    """

    kafka_url: str
    es_url: str


def noida_binary() -> Path:
    """Return the path of the noida-db binary shipped in its wheel."""
    name = "noida-db.exe" if os.name == "nt" else "noida-db"
    path = Path(str(files("noida_db").joinpath(name)))
    if not path.is_file():
        raise EmbeddedServerError(f"noida-db binary not found at {path}")
    if not os.access(path, os.X_OK):
        path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return path


def free_port(host: str = "127.0.0.1") -> int:
    """Return a TCP port that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


class EmbeddedServers:
    """Starts (or attaches to) a noida-db server for Kafka and Elasticsearch.

    Use as a context manager; on exit it stops the server only if it started
    it. ``stop()`` sends SIGINT and waits, so that noida-db saves its data
    (a killed server can lose the last second of acknowledged writes).
    """

    def __init__(
        self,
        data_dir: Path,
        *,
        host: str = "127.0.0.1",
        startup_timeout: float = 30.0,
        attach: bool = True,
    ) -> None:
        self.data_dir = Path(data_dir)
        self.host = host
        self.startup_timeout = startup_timeout
        self.attach = attach
        self.process: subprocess.Popen[bytes] | None = None
        self.addresses: ServerAddresses | None = None
        self._log_path = self.data_dir / "noida-db.log"

    @property
    def owned(self) -> bool:
        """True if this object started the server (and will stop it)."""
        return self.process is not None

    def __enter__(self) -> ServerAddresses:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def start(self) -> ServerAddresses:
        """Attach to the running server of this data dir, or start one.

        Raises:
            EmbeddedServerError: If the server does not answer in time; the
                message carries the end of its log.

        """
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if self.attach:
            running = self.running()
            if running is not None:
                log.info("using the embedded server already running: %s", running)
                self.addresses = running
                return running
        kafka_port, es_port = free_port(self.host), free_port(self.host)
        command = [
            str(noida_binary()),
            "start",
            "--data-dir",
            str(self.data_dir / "noida"),
            "--host",
            self.host,
            "--only",
            "kafka,elasticsearch",
            "--kafka-port",
            str(kafka_port),
            "--elasticsearch-port",
            str(es_port),
        ]
        log_file = self._log_path.open("ab")
        try:
            self.process = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # Ctrl-C in a terminal reaches us, not it
            )
        finally:
            log_file.close()
        addresses = ServerAddresses(
            kafka_url=f"kafka://{self.host}:{kafka_port}",
            es_url=f"http://{self.host}:{es_port}",
        )
        try:
            self._wait_until_ready(kafka_port, es_port)
        except BaseException:
            self.stop()
            raise
        self.addresses = addresses
        state = {"pid": self.process.pid, **addresses.__dict__}
        (self.data_dir / STATE_FILE).write_text(json.dumps(state), encoding="utf-8")
        log.info("started embedded noida-db: %s", addresses)
        return addresses

    def stop(self, timeout: float = 15.0) -> None:
        """Stop the server if this object started it; otherwise do nothing."""
        process, self.process = self.process, None
        if process is None:
            return
        with contextlib.suppress(OSError, ValueError):
            state_path = self.data_dir / STATE_FILE
            if json.loads(state_path.read_text()).get("pid") == process.pid:
                state_path.unlink()
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                log.warning("noida-db did not stop in %.0f s; killing it", timeout)
                process.kill()
                process.wait()

    def stop_service(self, service: str) -> None:
        """Stop one protocol (``kafka`` or ``elasticsearch``), keeping its data.

        For outage drills: the port closes until :meth:`start_service`.
        """
        self._control("stop", service)

    def start_service(self, service: str) -> None:
        """Start a protocol stopped by :meth:`stop_service` again, same port."""
        self._control("start", service)

    def _control(self, verb: str, service: str) -> None:
        if service not in ("kafka", "elasticsearch"):
            raise ValueError(f"unknown service {service!r}")
        command = [
            str(noida_binary()),
            verb,
            service,
            "--data-dir",
            str(self.data_dir / "noida"),
        ]
        done = subprocess.run(
            command, capture_output=True, text=True, timeout=30, check=False
        )
        if done.returncode != 0:
            raise EmbeddedServerError(
                f"noida-db {verb} {service} failed: {done.stderr.strip()}"
            )

    def _wait_until_ready(self, kafka_port: int, es_port: int) -> None:
        assert self.process is not None
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise EmbeddedServerError(
                    f"noida-db exited with status {self.process.returncode}:\n"
                    + self._log_tail()
                )
            if _port_open(self.host, kafka_port) and _http_ok(
                f"http://{self.host}:{es_port}/"
            ):
                return
            time.sleep(0.1)
        raise EmbeddedServerError(
            f"noida-db did not answer within {self.startup_timeout:.0f} s:\n"
            + self._log_tail()
        )

    def running(self) -> ServerAddresses | None:
        """Return the addresses of the server running under this data dir, if any."""
        try:
            state = json.loads((self.data_dir / STATE_FILE).read_text(encoding="utf-8"))
            addresses = ServerAddresses(
                kafka_url=state["kafka_url"], es_url=state["es_url"]
            )
            os.kill(int(state["pid"]), 0)
        except (OSError, ValueError, KeyError, TypeError):
            return None
        host_port = addresses.kafka_url.split("://", 1)[1]
        host, port = host_port.rsplit(":", 1)
        if _port_open(host, int(port)) and _http_ok(addresses.es_url + "/"):
            return addresses
        return None

    def _log_tail(self, lines: int = 20) -> str:
        try:
            text = self._log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])


def _port_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def _http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1.0) as response:  # noqa: S310
            return 200 <= response.status < 300
    except OSError:
        return False
