"""The three-way sentiment label and its thresholds (no model needed)."""

from __future__ import annotations

from dataclasses import dataclass

from monitor.errors import MonitorError

NEGATIVE = "negative"
NEUTRAL = "neutral"
POSITIVE = "positive"


class InvalidThresholdsError(MonitorError):
    """The label thresholds are out of range or out of order."""


@dataclass(frozen=True)
class LabelThresholds:
    """Cut points that turn a positive probability into a label.

    With a trained model (``monitor train sentiment``) the probability is
    calibrated, so the cut points mean what they say: with the defaults,
    ``negative`` is "at least 70 % likely negative", ``positive`` "at least
    70 % likely positive", and ``neutral`` the texts the model is not that
    sure of either way (on posts like the ones it was trained on). With
    snownlp's own model they are only conventions: its probabilities are
    not calibrated on social posts.

    Attributes:
        negative_below: A probability strictly below this is ``negative``.
        positive_from: A probability at or above this is ``positive``;
            anything between the two is ``neutral``.

    """

    negative_below: float = 0.3
    positive_from: float = 0.7

    def __post_init__(self) -> None:
        if not 0.0 <= self.negative_below <= self.positive_from <= 1.0:
            raise InvalidThresholdsError(
                "need 0 <= negative_below <= positive_from <= 1, got "
                f"{self.negative_below} and {self.positive_from}"
            )

    def label(self, positive_probability: float) -> str:
        """Return ``negative``, ``neutral`` or ``positive`` for a probability."""
        if positive_probability < self.negative_below:
            return NEGATIVE
        if positive_probability >= self.positive_from:
            return POSITIVE
        return NEUTRAL
