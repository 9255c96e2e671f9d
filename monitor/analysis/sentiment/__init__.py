"""Sentiment: the snownlp-compatible scorer, its model and the label thresholds."""
