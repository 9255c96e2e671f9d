"""Real local servers for integration tests: noida-db (Kafka + Elasticsearch)
and real ``monitor worker`` processes. Nothing is mocked; a server that cannot
start fails the test with the reason."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer
from elasticsearch import Elasticsearch
from prometheus_client.parser import text_string_to_metric_families

from monitor.local.embedded import EmbeddedServers, ServerAddresses, free_port
from monitor.topics import bootstrap_servers
from tests.support import wait_until

pytestmark = pytest.mark.integration


@pytest.fixture(scope="session")
def noida(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedServers]:
    """One noida-db server for the session (tests isolate by names, not servers)."""
    servers = EmbeddedServers(tmp_path_factory.mktemp("noida"), attach=False)
    servers.start()  # raises EmbeddedServerError with the server's log on failure
    yield servers
    servers.stop()


class WorkerProcess:
    """A real ``monitor worker`` subprocess."""

    def __init__(self, env: dict[str, str], log_path: Path, web_url: str) -> None:
        self.env, self.log_path, self.web_url = env, log_path, web_url
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, *, timeout: float = 60) -> WorkerProcess:
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "monitor", "worker"],
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        try:
            wait_until(self._ready, timeout=timeout, what="the worker's /metrics")
        except AssertionError as exc:
            self.stop()
            raise AssertionError(f"{exc}\nworker log:\n{self.log_tail()}") from None
        return self

    def _ready(self) -> bool:
        assert self.process is not None
        if self.process.poll() is not None:
            raise AssertionError(
                f"worker exited with {self.process.returncode}:\n{self.log_tail()}"
            )
        try:
            with urllib.request.urlopen(self.web_url + "/metrics", timeout=1):
                return True
        except OSError:
            return False

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30) -> int | None:
        if self.process is None or self.process.poll() is not None:
            return None if self.process is None else self.process.returncode
        self.process.send_signal(sig)
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait()

    def metrics(self) -> dict[str, float]:
        """Samples as ``name{label=value,...}`` -> value (labels sorted)."""
        with urllib.request.urlopen(self.web_url + "/metrics", timeout=5) as response:
            text = response.read().decode()
        samples: dict[str, float] = {}
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                labels = ",".join(f"{k}={v}" for k, v in sorted(sample.labels.items()))
                samples[f"{sample.name}{{{labels}}}"] = sample.value
        return samples

    def metric_sum(self, name: str, **labels: str) -> float:
        """Sum of a metric's samples whose labels include ``labels``."""
        total = 0.0
        for key, value in self.metrics().items():
            metric, _, label_text = key.partition("{")
            if metric != name:
                continue
            pairs = dict(
                p.split("=", 1) for p in label_text.rstrip("}").split(",") if p
            )
            if all(pairs.get(k) == v for k, v in labels.items()):
                total += value
        return total

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(
                self.log_path.read_text(errors="replace").splitlines()[-lines:]
            )
        except OSError:
            return "(no log)"


class Stack:
    """One test's isolated slice of the servers: its own topics, indices, group."""

    def __init__(self, addresses: ServerAddresses, tmp_path: Path) -> None:
        self.name = "t" + uuid.uuid4().hex[:10]
        self.addresses = addresses
        self.tmp_path = tmp_path
        self.index_prefix = self.name
        self.posts_topic = f"{self.name}-posts"
        self.dead_letters_topic = f"{self.name}-dead-letters"
        self.web_port = free_port()
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("MONITOR_")},
            "MONITOR_KAFKA_URL": addresses.kafka_url,
            "MONITOR_ES_URL": addresses.es_url,
            "MONITOR_APP_ID": self.name,
            "MONITOR_DATA_DIR": str(tmp_path / "data"),
            "MONITOR_WEB_PORT": str(self.web_port),
            "MONITOR_INDEX_PREFIX": self.index_prefix,
            "MONITOR_TOPIC_POSTS": self.posts_topic,
            "MONITOR_TOPIC_SCORED_POSTS": f"{self.name}-scored-posts",
            "MONITOR_TOPIC_BURSTS": f"{self.name}-bursts",
            "MONITOR_TOPIC_WINDOW_PARTIALS": f"{self.name}-window-partials",
            "MONITOR_TOPIC_TRIGGERS": f"{self.name}-triggers",
            "MONITOR_TOPIC_COUNT_STATE": f"{self.name}-count-state",
            "MONITOR_TOPIC_MERGE_STATE": f"{self.name}-merge-state",
            "MONITOR_TOPIC_TICKETS": f"{self.name}-tickets",
            "MONITOR_TOPIC_DEAD_LETTERS": self.dead_letters_topic,
            "MONITOR_TOPIC_PARTITIONS": "2",
            "MONITOR_ES_RETRY_MAX_SECONDS": "2",
        }
        self.es = Elasticsearch(addresses.es_url, request_timeout=30)
        self.workers: list[WorkerProcess] = []

    def worker(self, **env: str) -> WorkerProcess:
        """A worker of this stack; ``env`` overrides (another web port, say)."""
        merged = {**self.env, **env}
        process = WorkerProcess(
            merged,
            self.tmp_path / f"worker-{len(self.workers)}.log",
            f"http://127.0.0.1:{merged['MONITOR_WEB_PORT']}",
        )
        self.workers.append(process)
        return process

    def monitor(
        self,
        *args: str,
        timeout: float = 180,
        check: bool = True,
        env: dict[str, str] | None = None,
    ) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            [sys.executable, "-m", "monitor", *args],
            env=env or self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if check and done.returncode != 0:
            raise AssertionError(
                f"monitor {' '.join(args)} exited {done.returncode}:\n"
                f"{done.stderr[-3000:]}"
            )
        return done

    def write_jsonl(
        self, posts: list[dict[str, Any]], name: str = "feed.jsonl"
    ) -> Path:
        path = self.tmp_path / name
        path.write_text(
            "".join(json.dumps(p, ensure_ascii=False) + "\n" for p in posts),
            encoding="utf-8",
        )
        return path

    def publish_raw(self, payloads: list[bytes]) -> None:
        """Send bytes straight to the posts topic, as a foreign producer would."""

        async def send() -> None:
            producer = AIOKafkaProducer(
                bootstrap_servers=bootstrap_servers(self.addresses.kafka_url),
                acks="all",
            )
            await producer.start()
            try:
                for payload in payloads:
                    await producer.send_and_wait(self.posts_topic, payload)
            finally:
                await producer.stop()

        asyncio.run(send())

    def indexed_count(self) -> int:
        pattern = f"{self.index_prefix}-posts-*"
        self.es.indices.refresh(index=pattern, allow_no_indices=True)
        return int(self.es.count(index=pattern, allow_no_indices=True)["count"])

    def indexed_docs(self) -> dict[str, dict[str, Any]]:
        pattern = f"{self.index_prefix}-posts-*"
        self.es.indices.refresh(index=pattern, allow_no_indices=True)
        response = self.es.search(index=pattern, size=10_000, query={"match_all": {}})
        return {hit["_id"]: hit["_source"] for hit in response["hits"]["hits"]}

    def close(self) -> None:
        for process in self.workers:
            process.stop()
        self.es.close()


@pytest.fixture
def stack(noida: EmbeddedServers, tmp_path: Path) -> Iterator[Stack]:
    """An isolated slice of the session's servers; stops its workers afterwards."""
    assert noida.addresses is not None
    slice_ = Stack(noida.addresses, tmp_path)
    yield slice_
    slice_.close()
