"""Evaluations of the analysis on labelled data (reads files)."""
