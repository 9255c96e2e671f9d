"""Pure logic: no Faust, aiohttp or Elasticsearch imports, no I/O.

``score_texts(texts)`` returns ``[SnowNLP(t).sentiments for t in texts]``,
bit-identical and batched (see :mod:`monitor.analysis.sentiment.snowfast`).
It builds snownlp's own models once, from the reader
:mod:`monitor.config.models` installs when imported (the loader reads the
files; nothing here does).
"""

from __future__ import annotations

from monitor.analysis.sentiment.snowfast import score_texts

__all__ = ["score_texts"]
