"""5-fold cross-validation of sentiment models on the dev halves (prints JSON).

Usage::

    nice -n 10 .venv/bin/python benchmarks/cv_sentiment.py [DATA_DIR] \
        [--configs nb,words,...] [--curve] [--folds 5]

DATA_DIR holds the ``*_dev.csv`` files (default ``../shared/data/sentiment``).
Texts are normalised as the score stage does and segmented once. Folds are
stratified by corpus and label (seed 20240521). In each fold the training
part is split as ``monitor train sentiment`` splits it: 10 % held out for the
calibration, the rest trains the model. Reported per corpus and as the
macro-mean of the four: accuracy of the calibrated probability at 0.5 (mean
and standard error over folds), ROC AUC and expected calibration error
(15 bins) of the pooled out-of-fold predictions; weibo also with its
``[...]`` codes removed from the test texts. ``--curve`` adds a learning
curve of the default configuration (training on a share of each training
fold).
"""

from __future__ import annotations

import argparse
import json
import math
import random
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from monitor.analysis.sentiment.calibration import (  # noqa: E402
    expected_calibration_error,
    sigmoid,
)
from monitor.analysis.sentiment.features import (  # noqa: E402
    FeatureOptions,
    strip_emoticon_codes,
)
from monitor.analysis.sentiment.linear import LinearOptions  # noqa: E402
from monitor.analysis.sentiment.trainer import (  # noqa: E402
    TrainOptions,
    fit_model,
    split_holdout,
)
from monitor.analysis.text import normalise_text  # noqa: E402
from monitor.cli.datasets import read_labelled_csv  # noqa: E402
from monitor.config.models import default_scorer  # noqa: E402

SEED = 20240521
CORPORA = (
    "waimai_10k",
    "chnsenticorp_htl_all",
    "online_shopping_10_cats",
    "weibo_senti_2400",
)
SHORT = {
    "waimai_10k": "waimai",
    "chnsenticorp_htl_all": "hotel",
    "online_shopping_10_cats": "shopping",
    "weibo_senti_2400": "weibo",
}

F0 = FeatureOptions(words=True, word_bigrams=False)
CONFIGS: dict[str, TrainOptions] = {
    # snownlp's own naive Bayes, retrained (stop words dropped, counts).
    "nb": TrainOptions(kind="naive_bayes"),
    "lr_words": TrainOptions(features=F0, linear=LinearOptions(nb_scaling=False)),
    "nblr_words": TrainOptions(features=F0),
    "nblr_bigrams": TrainOptions(features=replace(F0, word_bigrams=True)),
    "nblr_bigrams_c23": TrainOptions(
        features=replace(F0, word_bigrams=True, char_ngrams=(2, 3))
    ),
    "nblr_bigrams_c123": TrainOptions(
        features=replace(F0, word_bigrams=True, char_ngrams=(1, 2, 3))
    ),
    "default": TrainOptions(),
}


def _variants() -> dict[str, TrainOptions]:
    base = TrainOptions()
    f = base.features
    lin = base.linear
    out = {
        "default_neg2": replace(base, features=replace(f, negation_scope=2)),
        "default_emo": replace(base, features=replace(f, emoticons=True)),
        "default_emoji": replace(base, features=replace(f, emoji=True)),
        "default_punct": replace(base, features=replace(f, repeated_punctuation=True)),
        "default_c123": replace(base, features=replace(f, char_ngrams=(1, 2, 3))),
        "default_c2": replace(base, features=replace(f, char_ngrams=(2,))),
        "default_c12": replace(base, features=replace(f, char_ngrams=(1, 2))),
        "default_no_bigrams": replace(base, features=replace(f, word_bigrams=False)),
        "default_platt": replace(base, calibration="platt"),
        "default_c23": replace(base, features=replace(f, char_ngrams=(2, 3))),
        "default_no_nb": replace(base, linear=replace(lin, nb_scaling=False)),
        "default_min1": replace(base, linear=replace(lin, min_count=1)),
        "default_min3": replace(base, linear=replace(lin, min_count=3)),
    }
    for l2 in (1e-4, 1e-3, 3e-3):
        out[f"default_l2_{l2:g}"] = replace(base, linear=replace(lin, l2=l2))
    for alpha in (0.5, 2.0):
        out[f"default_alpha_{alpha:g}"] = replace(
            base, linear=replace(lin, nb_alpha=alpha)
        )
    return out


CONFIGS.update(_variants())


def load(data_dir: Path) -> tuple[list[str], list[int], list[int]]:
    texts: list[str] = []
    labels: list[int] = []
    corpus: list[int] = []
    for c, name in enumerate(CORPORA):
        data = read_labelled_csv(data_dir / f"{name}_dev.csv")
        texts.extend(normalise_text(t) for t in data.texts)
        labels.extend(data.labels)
        corpus.extend([c] * len(data.texts))
    return texts, labels, corpus


def folds(labels: list[int], corpus: list[int], k: int) -> list[int]:
    """Fold of each text, stratified by (corpus, label)."""
    rng = random.Random(SEED)
    fold = [0] * len(labels)
    groups: dict[tuple[int, int], list[int]] = {}
    for i, key in enumerate(zip(corpus, labels, strict=True)):
        groups.setdefault(key, []).append(i)
    for key in sorted(groups):
        members = groups[key]
        rng.shuffle(members)
        for j, i in enumerate(members):
            fold[i] = j % k
    return fold


def auc(y: np.ndarray, p: np.ndarray) -> float:
    order = np.argsort(p, kind="stable")
    ranks = np.empty(len(p))
    sp = p[order]
    # average ranks for ties
    _, inv, counts = np.unique(sp, return_inverse=True, return_counts=True)
    cum = np.cumsum(counts)
    avg = cum - (counts - 1) / 2
    ranks[order] = avg[inv]
    npos = y.sum()
    nneg = len(y) - npos
    return float((ranks[y == 1].sum() - npos * (npos + 1) / 2) / (npos * nneg))


def cross_validate(
    texts: list[str],
    words: list[list[str]],
    labels: list[int],
    corpus: list[int],
    options: TrainOptions,
    k: int,
    share: float = 1.0,
    weibo_stripped: tuple[list[str], list[list[str]]] | None = None,
) -> dict[str, object]:
    fold = folds(labels, corpus, k)
    y = np.asarray(labels)
    c = np.asarray(corpus)
    calibrated = np.zeros(len(texts))
    raw = np.zeros(len(texts))
    stripped = np.full(len(texts), np.nan)
    fold_acc = np.zeros((k, len(CORPORA)))
    sizes = []
    for f in range(k):
        train = [i for i in range(len(texts)) if fold[i] != f]
        if share < 1.0:
            rng = random.Random(f"{SEED}-{f}-{share}")
            train = sorted(rng.sample(train, int(len(train) * share)))
        test = [i for i in range(len(texts)) if fold[i] == f]
        fit_idx, cal_idx = split_holdout(
            [labels[i] for i in train], options.holdout, SEED
        )
        sizes.append(len(fit_idx))
        model = fit_model(
            [texts[train[i]] for i in fit_idx],
            [words[train[i]] for i in fit_idx],
            [labels[train[i]] for i in fit_idx],
            [texts[train[i]] for i in cal_idx],
            [words[train[i]] for i in cal_idx],
            [labels[train[i]] for i in cal_idx],
            options,
            default_scorer().stopwords,
        )
        r = model.log_odds([texts[i] for i in test], [words[i] for i in test])
        raw[test] = [sigmoid(z) for z in r]
        calibrated[test] = [model.calibration(p) for p in r]
        if weibo_stripped is not None:
            w_test = [i for i in test if corpus[i] == 3]
            sr = model.log_odds(
                [weibo_stripped[0][i] for i in w_test],
                [weibo_stripped[1][i] for i in w_test],
            )
            stripped[w_test] = [model.calibration(p) for p in sr]
        for ci in range(len(CORPORA)):
            t = np.asarray([i for i in test if corpus[i] == ci])
            fold_acc[f, ci] = float(((calibrated[t] >= 0.5) == (y[t] == 1)).mean())
    per: dict[str, object] = {}
    for ci, name in enumerate(CORPORA):
        m = c == ci
        accs = fold_acc[:, ci]
        per[SHORT[name]] = {
            "accuracy": round(float(accs.mean()), 4),
            "accuracy_se": round(float(accs.std(ddof=1) / math.sqrt(k)), 4),
            "auc": round(auc(y[m], calibrated[m]), 4),
            "ece": round(
                expected_calibration_error(y[m].tolist(), calibrated[m].tolist()), 4
            ),
            "ece_raw": round(
                expected_calibration_error(y[m].tolist(), raw[m].tolist()), 4
            ),
        }
    macro = float(fold_acc.mean(axis=1).mean())
    out: dict[str, object] = {
        "macro_accuracy": round(macro, 4),
        "macro_accuracy_se": round(
            float(fold_acc.mean(axis=1).std(ddof=1) / math.sqrt(k)), 4
        ),
        "reviews_mean_accuracy": round(float(fold_acc[:, :3].mean()), 4),
        "pooled_ece": round(expected_calibration_error(labels, calibrated.tolist()), 4),
        "pooled_auc": round(auc(y, calibrated), 4),
        "training_texts_per_fold": int(np.mean(sizes)),
        "corpora": per,
    }
    if weibo_stripped is not None:
        m = c == 3
        out["weibo_codes_removed"] = {
            "accuracy": round(float(((stripped[m] >= 0.5) == (y[m] == 1)).mean()), 4),
            "auc": round(auc(y[m], stripped[m]), 4),
            "ece": round(
                expected_calibration_error(y[m].tolist(), stripped[m].tolist()), 4
            ),
        }
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument(
        "data_dir", nargs="?", type=Path, default=ROOT.parent / "shared/data/sentiment"
    )
    parser.add_argument("--configs", default="nb,default")
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--curve", action="store_true")
    args = parser.parse_args()
    started = time.perf_counter()
    texts, labels, corpus = load(args.data_dir)
    scorer = default_scorer()
    words = scorer.segment_many(texts)
    no_codes = [strip_emoticon_codes(t) or t for t in texts]
    weibo = (no_codes, scorer.segment_many(no_codes))
    result: dict[str, object] = {
        "texts": len(texts),
        "per_corpus": {SHORT[n]: corpus.count(i) for i, n in enumerate(CORPORA)},
        "folds": args.folds,
        "configs": {},
    }
    for name in filter(None, args.configs.split(",")):
        t0 = time.perf_counter()
        report = cross_validate(
            texts,
            words,
            labels,
            corpus,
            CONFIGS[name],
            args.folds,
            weibo_stripped=weibo,
        )
        report["seconds"] = round(time.perf_counter() - t0, 1)
        result["configs"][name] = report  # type: ignore[index]
        print(
            json.dumps({name: report}, ensure_ascii=False), file=sys.stderr, flush=True
        )
    if args.curve:
        curve = {}
        for share in (0.05, 0.1, 0.25, 0.5, 1.0):
            r = cross_validate(
                texts, words, labels, corpus, TrainOptions(), args.folds, share
            )
            curve[str(share)] = {
                "training_texts": r["training_texts_per_fold"],
                "macro_accuracy": r["macro_accuracy"],
                "pooled_ece": r["pooled_ece"],
                "accuracy": {k: v["accuracy"] for k, v in r["corpora"].items()},  # type: ignore[attr-defined]
            }
            print(
                json.dumps({"curve": {share: curve[str(share)]}}),
                file=sys.stderr,
                flush=True,
            )
        result["learning_curve"] = curve
    result["seconds"] = round(time.perf_counter() - started, 1)
    print(json.dumps(result, ensure_ascii=False, indent=1))


if __name__ == "__main__":
    main()
