"""A worker started with a trained sentiment model scores a replayed feed with it."""

from __future__ import annotations

from pathlib import Path

import pytest

from monitor.analysis.sentiment.labels import LabelThresholds
from monitor.analysis.text import normalise_text
from monitor.cli.train import train_sentiment
from monitor.config.models import load_sentiment_model
from tests.integration.conftest import Stack
from tests.support import make_posts, wait_until

pytestmark = pytest.mark.integration

DATA = Path(__file__).resolve().parents[1] / "data" / "sentiment_train.csv"


def test_worker_scores_with_the_trained_model_and_records_its_id(
    stack: Stack, tmp_path: Path
) -> None:
    name = tmp_path / "models" / "feed"
    train_sentiment([DATA], name, holdout=0.25)
    model = load_sentiment_model(name)
    posts = make_posts(40, seed=17)
    worker = stack.worker(MONITOR_SENTIMENT_MODEL=str(name)).start()
    stack.monitor("replay", str(stack.write_jsonl(posts)))
    wait_until(
        lambda: stack.indexed_count() >= 40, timeout=120, what="40 indexed posts"
    )

    assert f"sentiment model {model.model_id}" in worker.log_tail(200)
    docs = stack.indexed_docs()
    texts = [normalise_text(post["text"]) for post in posts]
    thresholds = LabelThresholds()
    for post, (calibrated, raw) in zip(posts, model.probabilities(texts), strict=True):
        doc = docs[post["id"]]
        assert doc["sentiment_model"] == model.model_id
        # noida-db may lose the last ulp of a double in _source.
        assert abs(doc["sentiment"] - calibrated) < 1e-12
        assert abs(doc["sentiment_raw"] - raw) < 1e-12
        assert doc["label"] == thresholds.label(calibrated)
    # The trained model, not snownlp's: its scores differ from the raw ones.
    assert any(abs(d["sentiment"] - d["sentiment_raw"]) > 1e-6 for d in docs.values())
