"""Pure logic: no Faust, aiohttp or Elasticsearch imports, no I/O.

``score_texts(texts)`` returns ``[SnowNLP(t).sentiments for t in texts]``,
bit-identical and batched (see :mod:`monitor.analysis.sentiment.snowfast`).
"""

from __future__ import annotations

from monitor.analysis.sentiment.snowfast import score_texts

__all__ = ["score_texts"]
