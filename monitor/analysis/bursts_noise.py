"""Count and noise helpers of the burst and emerging-term detectors.

Checks of the values a detector is fed, Anscombe's variance-stabilising
difference of counts, the Gaussian tail in ``-log10`` and the weight of an
exponentially weighted average with a half-life.
"""

from __future__ import annotations

import math
from datetime import datetime, timezone

from monitor.errors import InvalidRecordError

_ANSCOMBE = 3.0 / 8.0
_LN10 = math.log(10.0)


def to_utc(moment: datetime, what: str) -> datetime:
    """Return a timezone-aware ``moment`` in UTC.

    Args:
        moment: A window start or snapshot time.
        what: Its name, for the error message.

    Raises:
        InvalidRecordError: If ``moment`` is naive.

    """
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise InvalidRecordError(f"{what} must be timezone-aware, got {moment!r}")
    return moment.astimezone(timezone.utc)


def check_count(count: float) -> float:
    """Return a posts count as a float after checking it.

    Raises:
        InvalidRecordError: If the count is negative, NaN or infinite.

    """
    value = float(count)
    if not math.isfinite(value) or value < 0:
        raise InvalidRecordError(f"count must be a finite number >= 0, got {count!r}")
    return value


def check_value(value: float) -> float:
    """Return a window's value as a float after checking it.

    Raises:
        InvalidRecordError: If the value is NaN or infinite.

    """
    number = float(value)
    if not math.isfinite(number):
        raise InvalidRecordError(f"value must be a finite number, got {value!r}")
    return number


def is_count(value: float) -> bool:
    """Return True for a whole number >= 0 (a possible count of posts)."""
    return value >= 0 and value == math.floor(value)


def anscombe_difference(observed: float, expected: float) -> float:
    """Return how far a count is above its expectation on the square-root scale.

    ``2 * (sqrt(observed + 3/8) - sqrt(expected + 3/8))``: Anscombe's
    variance-stabilising transform, about one unit per standard deviation
    for Poisson counts whatever their size.

    Args:
        observed: Posts counted (>= 0).
        expected: Posts expected (>= 0).

    Returns:
        The difference, in (Poisson) standard deviations; negative below.

    """
    return 2.0 * (math.sqrt(observed + _ANSCOMBE) - math.sqrt(expected + _ANSCOMBE))


def gauss_surprise(x: float) -> float:
    """Return ``-log10 P(N(0, 1) > x)``, finite however large ``x`` is."""
    if x < 8.0:
        return -math.log10(0.5 * math.erfc(x / math.sqrt(2.0)))
    # Mills ratio: P(N > x) ~ pdf(x) / x * (1 - 1/x**2), accurate to 1e-4 here.
    log_tail = -0.5 * x * x - math.log(x * math.sqrt(2.0 * math.pi))
    return -(log_tail + math.log1p(-1.0 / (x * x))) / _LN10


def ewma_alpha(step: float, half_life: float) -> float:
    """Return the weight of a new observation ``step`` after the last one."""
    # typeshed types float ** float as Any (a negative base gives a complex).
    decay: float = 2.0 ** (-step / half_life)
    return 1.0 - decay
