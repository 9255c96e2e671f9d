"""monitor: a streaming public-opinion monitor (舆情监测)."""

from __future__ import annotations

__version__ = "0.1.0"
