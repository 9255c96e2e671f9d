"""Loading snownlp's model files: the sentiment model and the data it needs.

``MONITOR_SENTIMENT_MODEL`` names a sentiment model: one saved with
``snownlp.sentiment.Sentiment().save(MODEL)`` (the file ``MODEL.3``) or one
``monitor train sentiment --out MODEL`` wrote (``MODEL.3`` plus its metadata
``MODEL.json``: kind, calibration, training data, validation scores); the
segmenter and the stop words are always snownlp's own, found in the
installed snownlp package. This
module reads the files (gzip + marshal, with the ``.3`` suffix snownlp adds on
Python 3, exactly as snownlp's ``load(fname, iszip)`` does) and hands their
contents, as :class:`~monitor.analysis.sentiment.snowfast.SnowNLPModels`, to
the pure scorer of :mod:`monitor.analysis.sentiment`.

Loading takes several seconds and the tables are large, so built scorers are
kept per process: snownlp's own once (:func:`default_scorer`), a model file
once per path (:func:`load_scorer`). Importing this module installs
:func:`read_snownlp_models` as the reader of snownlp's own models, so
``FastSnowNLP()`` and ``SentimentModel()`` without arguments keep working.
"""

from __future__ import annotations

import codecs
import gzip
import hashlib
import importlib.util
import json
import marshal
import os
import threading
import zlib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from monitor.analysis.sentiment import snowfast
from monitor.analysis.sentiment.calibration import Calibration
from monitor.analysis.sentiment.features import FeatureOptions
from monitor.analysis.sentiment.linear import LinearModel
from monitor.analysis.sentiment.model import SentimentModel
from monitor.analysis.sentiment.snowfast import (
    FastSnowNLP,
    SnowNLPModels,
    default_scorer,
)
from monitor.analysis.sentiment.trainer import (
    KINDS,
    NAIVE_BAYES,
    NBLR,
    LinearClassifier,
    NaiveBayesClassifier,
    TrainedModel,
    WordClassifier,
)
from monitor.errors import ConfigError, MonitorError

# default_scorer is re-exported: imported from here, its reader is installed.
__all__ = [
    "default_scorer",
    "load_scorer",
    "load_sentiment_model",
    "load_snownlp",
    "model_files",
    "model_name",
    "read_marshal_model",
    "read_model_metadata",
    "save_trained_model",
    "read_snownlp_models",
    "read_stopwords",
    "snownlp_data_dir",
]

#: Keys every segmenter (``snownlp.seg.y09_2047``) and classifier
#: (``snownlp.classification.bayes``) model has; checked to name a wrong file.
SEGMENTER_KEYS = ("status", "l1", "l2", "l3", "uni", "bi", "tri")
CLASSIFIER_KEYS = ("d", "total")
#: snownlp's ``save(fname)`` writes ``fname + ".3"`` on Python 3.
MODEL_SUFFIX = ".3"
#: What ``monitor train sentiment`` writes beside ``MODEL.3``.
METADATA_SUFFIX = ".json"
METADATA_FORMAT = 1


def snownlp_data_dir() -> Path:
    """Return the directory of the installed snownlp package, without importing it.

    Returns:
        The package directory holding ``seg/``, ``sentiment/`` and ``normal/``.

    Raises:
        ModuleNotFoundError: If snownlp is not installed.

    """
    spec = importlib.util.find_spec("snownlp")
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError("snownlp is not installed", name="snownlp")
    return Path(next(iter(spec.submodule_search_locations)))


def _model_error(what: str, fname: str | Path, reason: str) -> ConfigError:
    return ConfigError([f"{what} {fname} (file {fname}.3): {reason}"])


def read_marshal_model(
    fname: str | Path, *, iszip: bool = True, what: str = "model"
) -> Any:
    """Read a model exactly as snownlp's ``load(fname, iszip)`` methods do.

    Args:
        fname: The name given to snownlp's ``save``; ``.3`` is appended, as
            snownlp appends it on Python 3 (the py2 and py3 marshal formats
            differ).
        iszip: Whether the file is gzip-compressed (a plain file is read too,
            as snownlp falls back to it).
        what: What the file is, for the error message.

    Returns:
        The unmarshalled model.

    Raises:
        ConfigError: If the file is missing, unreadable or not marshal data;
            the message names the file.

    """
    path = str(fname) + ".3"
    try:
        if not iszip:
            with open(path, "rb") as f:
                return marshal.load(f)
        try:
            with gzip.open(path, "rb") as f:
                return marshal.loads(f.read())
        except OSError:  # not gzip: snownlp reads it plain then
            with open(path, "rb") as f:
                return marshal.loads(f.read())
    except OSError as exc:
        raise _model_error(what, fname, exc.strerror or str(exc)) from exc
    except (ValueError, EOFError, TypeError, zlib.error) as exc:
        raise _model_error(what, fname, f"not a snownlp model file ({exc})") from exc


def _check_keys(model: Any, keys: Sequence[str], what: str, fname: str | Path) -> None:
    if not isinstance(model, dict):
        raise _model_error(
            what, fname, f"not a snownlp {what} (holds a {type(model).__name__})"
        )
    missing = [key for key in keys if key not in model]
    if missing:
        raise _model_error(what, fname, f"not a snownlp {what} (no {missing})")


def read_stopwords(path: str | Path) -> frozenset[str]:
    """Read a UTF-8 stop-word file, one word per line, as snownlp does.

    Raises:
        ConfigError: If the file cannot be read; the message names it.

    """
    try:
        # codecs.open like snownlp: its line splitting differs from open()'s.
        with codecs.open(str(path), "r", "utf-8") as f:
            return frozenset(line.strip() for line in f)
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else str(exc)
        raise ConfigError([f"stop words {path}: {reason or exc}"]) from exc


def read_snownlp_models(
    seg_model: str | Path | None = None,
    sentiment_model: str | Path | None = None,
    stopwords: str | Path | None = None,
    *,
    iszip: bool = True,
) -> SnowNLPModels:
    """Read a segmenter, a sentiment classifier and stop words.

    Args:
        seg_model: A segmenter saved by ``snownlp.seg.save(fname)``, named as
            snownlp names it (without the ``.3``). Default: snownlp's own
            ``seg/seg.marshal``.
        sentiment_model: A classifier saved by
            ``snownlp.sentiment.save(fname)``, same naming. Default:
            snownlp's ``sentiment/sentiment.marshal``.
        stopwords: A UTF-8 file with one stop word per line. Default:
            snownlp's ``normal/stopwords.txt``.
        iszip: Whether the model files are gzip-compressed, as in snownlp's
            ``load(fname, iszip)``.

    Returns:
        The files' contents.

    Raises:
        ConfigError: If a file is missing or is not what it should be.

    """
    root = (
        snownlp_data_dir() if None in (seg_model, sentiment_model, stopwords) else None
    )

    def named(given: str | Path | None, *default: str) -> str | Path:
        if given is not None:
            return given
        assert root is not None
        return root.joinpath(*default)

    seg_file = named(seg_model, "seg", "seg.marshal")
    sentiment_file = named(sentiment_model, "sentiment", "sentiment.marshal")
    stopwords_file = named(stopwords, "normal", "stopwords.txt")
    # The classifier first: a file named by a setting fails before the large
    # segmenter is read.
    classifier = read_marshal_model(sentiment_file, iszip=iszip, what="sentiment model")
    _check_keys(classifier, CLASSIFIER_KEYS, "sentiment model", sentiment_file)
    segmenter = read_marshal_model(seg_file, iszip=iszip, what="segmenter")
    _check_keys(segmenter, SEGMENTER_KEYS, "segmenter", seg_file)
    return SnowNLPModels(
        segmenter=segmenter,
        classifier=classifier,
        stopwords=read_stopwords(stopwords_file),
    )


def load_snownlp(
    seg_model: str | Path | None = None,
    sentiment_model: str | Path | None = None,
    stopwords: str | Path | None = None,
    *,
    iszip: bool = True,
) -> FastSnowNLP:
    """Read the models (see :func:`read_snownlp_models`) into a new scorer.

    Not cached: :func:`load_scorer` and :func:`default_scorer` are.

    Raises:
        ConfigError: If a file is missing or is not what it should be, also
            when its content is marshal data of the wrong shape.

    """
    models = read_snownlp_models(seg_model, sentiment_model, stopwords, iszip=iszip)
    try:
        return FastSnowNLP(models)
    except (KeyError, TypeError, ValueError, AttributeError, IndexError) as exc:
        named = sentiment_model or seg_model or "snownlp's own"
        raise ConfigError([f"snownlp model {named}: malformed ({exc!r})"]) from exc


_by_path: dict[Path, FastSnowNLP] = {}
_by_path_lock = threading.Lock()


def load_scorer(sentiment_model: Path | None = None) -> FastSnowNLP:
    """Return the scorer of a sentiment model file, loading it once per path.

    Args:
        sentiment_model: A model saved by
            ``snownlp.sentiment.Sentiment().save(path)``, named as given to
            ``save`` (snownlp's ``.3`` suffix is added); None for snownlp's
            own (:func:`default_scorer`).

    Raises:
        ConfigError: If the file is missing or is not a snownlp sentiment
            model; the message names it.

    """
    if sentiment_model is None:
        return default_scorer()
    key = Path(sentiment_model).absolute()
    with _by_path_lock:
        found = _by_path.get(key)
        if found is None:
            found = load_snownlp(sentiment_model=sentiment_model)
            _by_path[key] = found
        return found


def model_name(path: str | Path) -> Path:
    """Return the model name a path stands for: ``MODEL`` for ``MODEL`` or ``MODEL.3``.

    A model is named as snownlp's ``save(fname)`` names it; its files are
    ``MODEL.3`` (the classifier) and, for a model ``monitor train sentiment``
    wrote, ``MODEL.json`` (its metadata). A path that ends in ``.3`` and is
    itself the classifier file (while ``<path>.3`` is not a file) names
    ``MODEL``, so both spellings work.
    """
    path = Path(path)
    if (
        path.name.endswith(MODEL_SUFFIX)
        and path.is_file()
        and not Path(str(path) + MODEL_SUFFIX).exists()
    ):
        return path.with_name(path.name[: -len(MODEL_SUFFIX)])
    return path


def model_files(name: str | Path) -> tuple[Path, Path]:
    """Return the classifier file and the metadata file of model ``name``."""
    return Path(str(name) + MODEL_SUFFIX), Path(str(name) + METADATA_SUFFIX)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def file_digest(path: Path) -> str:
    """Return the sha256 (hex) of a file; ConfigError naming it if unreadable."""
    try:
        return _sha256(path)
    except OSError as exc:
        raise ConfigError([f"{path}: {exc.strerror or exc}"]) from exc


def model_id_of(name: Path, digest: str) -> str:
    """Return the id scored posts record: the model's file name and its hash."""
    return f"{name.name}@{digest[:12]}"


def _write_atomically(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def save_trained_model(
    name: str | Path, model: TrainedModel, metadata: Mapping[str, Any]
) -> dict[str, Any]:
    """Write a trained model as ``name.3`` and ``name.json``.

    ``name.3`` is gzip-compressed marshal data, as snownlp's ``save`` writes:
    for a ``naive_bayes`` model exactly snownlp's classifier (so
    ``snownlp.sentiment.load(name)`` reads it), for an ``nblr`` model the
    weights. ``name.json`` is ``metadata`` plus the format, kind, id,
    calibration and the classifier file's sha256. The classifier is written
    first, each file atomically (a temporary file, then a rename).

    Args:
        name: The model name (snownlp's ``fname``, without ``.3``).
        model: The trained model.
        metadata: Training inputs, options, validation scores...

    Returns:
        The metadata as written.

    Raises:
        ConfigError: If ``name`` ends in ``.3`` or a file cannot be written.

    """
    name = Path(name)
    if name.name.endswith(MODEL_SUFFIX) or name.name.endswith(METADATA_SUFFIX):
        raise ConfigError(
            [
                f"model name {name}: give the name without {MODEL_SUFFIX} or "
                f"{METADATA_SUFFIX}; the files {MODEL_SUFFIX} and "
                f"{METADATA_SUFFIX} are added to it"
            ]
        )
    model_file, meta_file = model_files(name)
    if isinstance(model.classifier, NaiveBayesClassifier):
        data: dict[str, Any] = model.classifier.data
    else:
        assert isinstance(model.classifier, LinearClassifier)
        data = model.classifier.model.to_data()
    try:
        name.parent.mkdir(parents=True, exist_ok=True)
        _write_atomically(model_file, gzip.compress(marshal.dumps(data), mtime=0))
        digest = _sha256(model_file)
        written = dict(metadata)
        written.update(
            format=METADATA_FORMAT,
            kind=model.kind,
            id=model_id_of(name, digest),
            model_file=model_file.name,
            model_sha256=digest,
            calibration=model.calibration.to_dict(),
        )
        if isinstance(model.classifier, LinearClassifier):
            written["features"] = model.classifier.features.to_dict()
        _write_atomically(
            meta_file,
            json.dumps(written, ensure_ascii=False, indent=1).encode("utf-8"),
        )
    except OSError as exc:
        raise ConfigError([f"model {name}: cannot write ({exc})"]) from exc
    return written


def read_model_metadata(name: str | Path) -> dict[str, Any] | None:
    """Return the metadata of model ``name`` (``name.json``), None if there is none.

    Raises:
        ConfigError: If the file exists but is not a model's metadata.

    """
    _, meta_file = model_files(model_name(name))
    try:
        text = meta_file.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError([f"model metadata {meta_file}: {exc}"]) from exc
    try:
        meta = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError([f"model metadata {meta_file}: not JSON ({exc})"]) from exc
    if not isinstance(meta, dict) or meta.get("format") != METADATA_FORMAT:
        raise ConfigError(
            [f"model metadata {meta_file}: not format {METADATA_FORMAT} metadata"]
        )
    if meta.get("kind") not in KINDS:
        raise ConfigError(
            [f"model metadata {meta_file}: unknown kind {meta.get('kind')!r}"]
        )
    return meta


_trained_by_path: dict[Path, SentimentModel] = {}


def load_sentiment_model(model_path: Path | None = None) -> SentimentModel:
    """Return the :class:`SentimentModel` of a model (None: snownlp's own).

    ``model_path`` is a model name (``MODEL`` for the files ``MODEL.3`` and,
    if trained by ``monitor train sentiment``, ``MODEL.json``; ``MODEL.3``
    itself is accepted too, see :func:`model_name`). A model with metadata
    scores with its classifier and calibration; a bare snownlp file scores
    as snownlp does, uncalibrated. Loading takes a few seconds the first
    time per path (snownlp's model files are large); see :func:`load_scorer`.
    The model id is the name plus the classifier file's hash, so a model
    replaced on disk is told apart from the old one.

    Raises:
        ConfigError: If a file is missing or is not a model; the message
            names it.

    """
    if model_path is None:
        return SentimentModel(load_scorer(None))
    name = model_name(model_path)
    key = name.absolute()
    with _by_path_lock:
        found = _trained_by_path.get(key)
    if found is not None:
        return found
    meta = read_model_metadata(name)
    model_file, meta_file = model_files(name)
    if meta is None:
        scorer = load_scorer(name)
        return SentimentModel(
            scorer, model_id=model_id_of(name, file_digest(model_file))
        )
    digest = file_digest(model_file)
    if digest != meta.get("model_sha256"):
        raise ConfigError(
            [
                f"model {name}: {meta_file} describes another {model_file.name} "
                "(sha256 differs); retrain or restore the pair"
            ]
        )
    try:
        calibration = Calibration.from_dict(meta.get("calibration") or {})
    except MonitorError as exc:
        raise ConfigError([f"model metadata {meta_file}: {exc}"]) from exc
    model_id = model_id_of(name, digest)
    # snownlp's segmenter, shared: the trained classifier scores its words.
    scorer = default_scorer()
    data = read_marshal_model(name, what="sentiment model")
    if meta["kind"] == NAIVE_BAYES:
        _check_keys(data, CLASSIFIER_KEYS, "sentiment model", name)
        try:
            classifier: WordClassifier = NaiveBayesClassifier(data, scorer.stopwords)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise _model_error("sentiment model", name, f"malformed ({exc!r})") from exc
    else:
        if not (isinstance(data, dict) and data.get("kind") == NBLR):
            raise _model_error("sentiment model", name, "not an nblr model's weights")
        try:
            features = FeatureOptions.from_dict(meta.get("features") or {})
            classifier = LinearClassifier(LinearModel.from_data(data, features))
        except (MonitorError, TypeError, ValueError) as exc:
            raise ConfigError([f"model {name}: {exc}"]) from exc
    model = SentimentModel(
        scorer,
        classifier=classifier,
        calibration=calibration,
        model_id=model_id,
        metadata=meta,
    )
    with _by_path_lock:
        _trained_by_path[key] = model
    return model


#: FastSnowNLP() and SentimentModel() without models read snownlp's own here.
snowfast.use_model_reader(read_snownlp_models)
