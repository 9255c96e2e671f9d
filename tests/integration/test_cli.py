"""The ``monitor`` commands as a user runs them, on real local servers."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import sys
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from aiokafka import AIOKafkaProducer

from monitor.analysis.tickets.model import Evidence, Trigger
from monitor.analysis.tickets.policy import TicketPolicy
from monitor.local.embedded import free_port
from monitor.records import DeadLetter
from monitor.sinks.elasticsearch.tickets import TicketStore
from monitor.topics import bootstrap_servers, ensure_topics
from tests.integration.conftest import Stack, WorkerProcess
from tests.support import make_posts, wait_until

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MONITOR_")}
    env.update(extra)
    return env


def run_monitor(
    *args: str, env: dict[str, str], cwd: Path | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "monitor", *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def test_bad_environment_value_fails_fast_naming_the_variable(tmp_path: Path) -> None:
    done = run_monitor(
        "worker", env=clean_env(MONITOR_WEB_PORT="abc"), cwd=tmp_path, timeout=30
    )
    assert done.returncode == 2
    assert "MONITOR_WEB_PORT" in done.stderr and "integer" in done.stderr
    assert not (tmp_path / ".monitor").exists(), "nothing may start on a bad config"


def test_bad_config_file_fails_fast_naming_the_line(tmp_path: Path) -> None:
    config = tmp_path / "monitor.yaml"
    config.write_text("web_port: 6070\nnegative_below: lots\n", encoding="utf-8")
    done = run_monitor(
        "--config", str(config), "worker", env=clean_env(), cwd=tmp_path, timeout=30
    )
    assert done.returncode == 2
    assert f"{config} line 2: negative_below" in done.stderr


def test_worker_without_servers_starts_the_embedded_ones_and_stops_them(
    tmp_path: Path,
) -> None:
    data_dir = tmp_path / "data"
    port = free_port()
    env = clean_env(MONITOR_DATA_DIR=str(data_dir), MONITOR_WEB_PORT=str(port))
    worker = WorkerProcess(
        env, tmp_path / "worker.log", f"http://127.0.0.1:{port}"
    ).start()
    state = json.loads((data_dir / "embedded.json").read_text())
    os.kill(state["pid"], 0)  # the noida-db child is alive

    # A second command joins the running servers instead of starting others.
    feed = tmp_path / "feed.jsonl"
    feed.write_text(
        "".join(
            json.dumps(p, ensure_ascii=False) + "\n" for p in make_posts(20, prefix="e")
        ),
        encoding="utf-8",
    )
    replay = run_monitor("replay", str(feed), env=env, cwd=tmp_path)
    assert replay.returncode == 0, replay.stderr
    assert "sent 20 posts" in replay.stdout
    wait_until(
        lambda: worker.metric_sum("monitor_posts_indexed_total") >= 20,
        timeout=90,
        what="the replayed posts indexed",
    )
    assert json.loads((data_dir / "embedded.json").read_text())["pid"] == state["pid"]

    assert worker.stop(signal.SIGTERM) == 0
    wait_until(lambda: not _alive(state["pid"]), timeout=20, what="noida-db to stop")
    assert not (data_dir / "embedded.json").exists()


def test_replay_lists_rejected_lines_with_their_numbers(stack: Stack) -> None:
    posts = make_posts(3, prefix="j")
    feed = stack.tmp_path / "mixed.jsonl"
    lines = [
        json.dumps(posts[0]),
        "{broken",
        "",
        json.dumps(posts[1]),
        json.dumps({"id": "n", "text": "x"}),
        json.dumps(posts[2]),
    ]
    feed.write_text("\n".join(lines) + "\n", encoding="utf-8")
    done = stack.monitor("replay", str(feed))
    assert "sent 3 posts" in done.stdout and "rejected 2" in done.stdout
    assert "line 2: not valid JSON" in done.stdout
    assert "line 5: published_at is required" in done.stdout


def test_replay_from_csv_maps_columns_by_header(stack: Stack) -> None:
    feed = stack.tmp_path / "feed.csv"
    feed.write_text(
        "published_at,id,text,source,likes,followers,city\n"
        "2026-11-20T10:00:00+08:00,c1,空调有股怪味,dianping,3,120,上海\n"
        "2026-11-20T10:01:00+08:00,c2,服务很好,weibo,,,\n",
        encoding="utf-8",
    )
    worker = stack.worker().start()
    done = stack.monitor("replay", str(feed))
    assert "sent 2 posts" in done.stdout
    wait_until(lambda: stack.indexed_count() >= 2, timeout=90, what="CSV posts indexed")
    docs = stack.indexed_docs()
    assert docs["c1"]["likes"] == 3 and docs["c1"]["followers"] == 120
    assert docs["c1"]["meta"] == {"city": "上海"} and docs["c1"]["source"] == "dianping"
    assert docs["c2"]["likes"] == 0
    # ES shows documents before the worker has counted the bulk response.
    wait_until(
        lambda: worker.metric_sum("monitor_posts_indexed_total") == 2,
        timeout=30,
        what="the indexed counter",
    )


def test_evaluate_sentiment_reports_per_file_and_overall(tmp_path: Path) -> None:
    good = tmp_path / "a.csv"
    good.write_text(
        "text,label\n服务很好，非常满意,1\n太差了，再也不来了,0\n"
        "环境干净，味道不错,1\n等了一个小时还没上菜,0\n",
        encoding="utf-8",
    )
    other = tmp_path / "b.csv"
    other.write_text("label,text\n1,物美价廉\n0,质量很差\n", encoding="utf-8")
    done = run_monitor(
        "evaluate",
        "sentiment",
        str(good),
        str(other),
        "--json",
        env=clean_env(),
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert set(report["files"]) == {"a.csv", "b.csv"}
    assert report["files"]["a.csv"]["n"] == 4 and report["overall"]["n"] == 6
    for entry in [*report["files"].values(), report["overall"]]:
        assert 0.0 <= entry["accuracy"] <= 1.0
        assert entry["texts_per_second"] > 0
        assert set(entry["classes"]) == {"negative", "positive"}
    assert report["files"]["a.csv"]["accuracy"] == 1.0  # clear-cut texts
    table = run_monitor(
        "evaluate", "sentiment", str(good), env=clean_env(), cwd=tmp_path
    )
    assert table.returncode == 0 and "overall" in table.stdout


def test_evaluate_sentiment_names_a_bad_label_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("text,label\n好,1\n差,maybe\n", encoding="utf-8")
    done = run_monitor("evaluate", "sentiment", str(bad), env=clean_env(), cwd=tmp_path)
    assert done.returncode != 0
    assert "line 3" in done.stderr and "label must be 0 or 1" in done.stderr


def test_demo_runs_the_main_job_on_the_embedded_default(tmp_path: Path) -> None:
    feed = tmp_path / "feed.jsonl"
    posts = make_posts(60, prefix="d")
    feed.write_text(
        "".join(json.dumps(p, ensure_ascii=False) + "\n" for p in posts),
        encoding="utf-8",
    )
    env = clean_env(
        MONITOR_DATA_DIR=str(tmp_path / "data"), MONITOR_WEB_PORT=str(free_port())
    )
    done = run_monitor(
        "demo",
        "--feed",
        str(feed),
        "--topics",
        str(REPO / "samples/topics.yaml"),
        "--rate",
        "200",
        "--exit-when-done",
        env=env,
        cwd=tmp_path,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "60 posts indexed" in done.stdout
    assert "Elasticsearch" in done.stdout and "/metrics" in done.stdout
    assert "labels:" in done.stdout
    assert not (tmp_path / "data" / "embedded.json").exists(), (
        "demo must stop its servers"
    )


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    # A zombie still answers kill(0); its status says it is gone.
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as status:
            return "\nState:\tZ" not in status.read()
    except OSError:
        return False


def test_evaluate_bursts_scores_a_series_in_nab_format(tmp_path: Path) -> None:
    import math
    import random
    from datetime import UTC, datetime, timedelta

    rng = random.Random(3)
    start = datetime(2015, 3, 1, tzinfo=UTC)  # NAB files are UTC, without offset
    rows, spike = 3000, 2200
    lines = ["timestamp,value"]
    for i in range(rows):
        base = 20 + 8 * math.sin(2 * math.pi * i / 288)
        value = rng.gauss(base, 3) + (200 if spike <= i < spike + 6 else 0)
        stamp = start + timedelta(minutes=5 * i)
        lines.append(f"{stamp:%Y-%m-%d %H:%M:%S},{max(0, round(value))}")
    (tmp_path / "Twitter_volume_TEST.csv").write_text("\n".join(lines) + "\n")
    window = [
        f"{start + timedelta(minutes=5 * (spike - 150)):%Y-%m-%d %H:%M:%S}.000000",
        f"{start + timedelta(minutes=5 * (spike + 150)):%Y-%m-%d %H:%M:%S}.000000",
    ]
    (tmp_path / "combined_windows.json").write_text(
        json.dumps({"realTweets/Twitter_volume_TEST.csv": [window]})
    )
    done = run_monitor(
        "evaluate", "bursts", str(tmp_path), "--json", env=clean_env(), cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["profile"] == "standard" and report["windows"] == 1
    assert set(report["files"]) == {"Twitter_volume_TEST.csv"}
    assert report["score"] > 50, report  # the spike is caught inside its window
    table = run_monitor(
        "evaluate",
        "bursts",
        str(tmp_path),
        "--profile",
        "reward_low_FP_rate",
        env=clean_env(),
        cwd=tmp_path,
    )
    assert table.returncode == 0 and "overall" in table.stdout


# --- hostile data prints as text ----------------------------------------------

#: Rich markup that would crash or restyle the output, and terminal escapes:
#: a colour, an OSC window-title change ended by BEL, an 8-bit CSI.
HOSTILE = "[/x] [bold]loud \x1b[31mred\x1b[0m \x1b]0;pwned\x07 \x9b2J [link=x]l[/link]"
#: Anything a terminal acts on except newline.
TERMINAL_CONTROLS = re.compile(r"[\x00-\x09\x0b-\x1f\x7f-\x9f]")


def _assert_prints_as_text(done: subprocess.CompletedProcess[str]) -> None:
    assert done.returncode == 0, done.stderr[-3000:]
    assert not TERMINAL_CONTROLS.search(done.stdout + done.stderr), done.stdout
    assert "[/x] [bold]loud [31mred" in done.stdout  # shown, not parsed


def test_dead_letters_with_markup_and_escapes_print_as_text(stack: Stack) -> None:
    letter = DeadLetter(
        stage="score",
        reason=f"not valid JSON: {HOSTILE}",
        payload=HOSTILE,
        payload_encoding="utf-8",
        topic=stack.posts_topic,
        failed_at=datetime.now(timezone.utc),
        source="weibo[/x]\x1b[2J",
    )

    async def publish() -> None:
        await ensure_topics(
            stack.addresses.kafka_url, {stack.dead_letters_topic: 1}, replicas=1
        )
        producer = AIOKafkaProducer(
            bootstrap_servers=bootstrap_servers(stack.addresses.kafka_url),
            acks="all",
        )
        await producer.start()
        try:
            # A record that is no dead letter must not hide the ones that are.
            await producer.send_and_wait(stack.dead_letters_topic, b"\xff{garbled")
            await producer.send_and_wait(stack.dead_letters_topic, letter.dumps())
        finally:
            await producer.stop()

    asyncio.run(publish())
    wide = {**stack.env, "COLUMNS": "400"}

    _assert_prints_as_text(stack.monitor("dead-letters", check=False, env=wide))
    dumped = stack.monitor("dead-letters", "--json", check=False, env=wide)
    assert not TERMINAL_CONTROLS.search(dumped.stdout.replace("\n", ""))
    assert json.loads(dumped.stdout)[0]["payload"] == HOSTILE  # exact in JSON


def test_tickets_with_markup_and_escapes_print_as_text(stack: Stack) -> None:
    start = datetime(2026, 11, 20, 13, 0, tzinfo=timezone.utc)
    post = Evidence("p1", HOSTILE, 10, 0, start, author=HOSTILE, url=HOSTILE)
    decision = TicketPolicy().decide(
        Trigger(
            topic="空调异味",
            rule="负面声量",
            kind="negative_volume",
            keyword=None,
            window_start=start,
            window_end=start + timedelta(minutes=5),
            observed_value=12.0,
            threshold=6.0,
            evidence=(post,),
        ),
        [],
        start + timedelta(minutes=5),
    )
    assert decision.ticket is not None and decision.event is not None
    ticket = replace(decision.ticket, topic=HOSTILE, owner=HOSTILE, keywords=(HOSTILE,))
    event = replace(decision.event, actor=HOSTILE, note=HOSTILE)

    async def save() -> None:
        store = TicketStore.connect(stack.addresses.es_url, stack.index_prefix)
        try:
            await store.save(ticket, [event], None)
        finally:
            await store.close()

    asyncio.run(save())
    wide = {**stack.env, "COLUMNS": "400"}

    _assert_prints_as_text(stack.monitor("tickets", "list", check=False, env=wide))
    _assert_prints_as_text(
        stack.monitor("tickets", "show", ticket.ticket_id, check=False, env=wide)
    )
