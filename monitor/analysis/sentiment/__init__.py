"""Sentiment: the snownlp-compatible scorer, its model and the label thresholds.

Modules: ``snowfast`` (snownlp's segmenter and naive Bayes, batched and
bit-identical), ``model`` (:class:`~monitor.analysis.sentiment.model.SentimentModel`,
what the score stage calls), ``labels`` (the three-way label), and for
trained models ``trainer`` (what ``monitor train sentiment`` fits),
``linear`` (NB-weighted logistic regression), ``naive_bayes`` (snownlp's
classifier retrained), ``features`` and ``calibration``.
"""
