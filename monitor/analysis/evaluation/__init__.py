"""Scoring the analysis against labelled data: classification reports, NAB scoring."""
