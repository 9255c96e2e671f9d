"""Leave-one-series-out cross-validation of detector defaults, NAB scored.

The detector learns nothing across series: each series starts from a fresh
detector. A configuration's score on a set of series is therefore just the
sum of its per-series raw NAB scores, computed once per configuration and
series (:class:`~monitor.analysis.evaluation.bursts.RawScore`), and every
fold below is derived from that table without running a detector again.

Protocol (:func:`cross_validate`):

* the series fall into groups (e.g. ``realTweets`` and ``nab_other``) that
  weigh equally: the objective of a set of series is the mean, over the
  groups that have windows in it, of NAB's normalisation of the group's
  summed raw scores (:func:`objective`);
* each series is held out in turn; the configuration with the best
  objective on the other series is chosen (ties go to the earlier
  configuration) and scores the held-out series;
* a group's cross-validated score is NAB's normalisation of the *summed*
  held-out raw scores (S_det, S_null and S_perfect summed over its folds),
  not a mean of per-fold scores;
* the default is the configuration with the best objective on all series;
  its in-sample scores beside the cross-validated ones show the optimism of
  choosing among the configurations tried.

Because a configuration has no parameters fitted to the training series,
its inner leave-one-out score on the training series equals its training
score; choosing by training score inside each outer fold is thus nested
cross-validation of the whole selection procedure.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from monitor.analysis.evaluation.bursts import RawScore, normalise_sum
from monitor.errors import InvalidRecordError


@dataclass(frozen=True)
class CrossValidation:
    """Result of :func:`cross_validate`.

    Attributes:
        configurations: Configurations tried (their number is the count to
            report).
        chosen: Per held-out series, the configuration chosen without it.
        held_out: Per held-out series, its raw score under that choice.
        cv_scores: Per group, NAB's normalisation of the summed held-out raw
            scores (``None`` for a group without windows).
        default: The configuration with the best objective on all series.
        in_sample_scores: Per group, the default's normalised score.

    """

    configurations: int
    chosen: dict[str, str]
    held_out: dict[str, RawScore]
    cv_scores: dict[str, float | None]
    default: str
    in_sample_scores: dict[str, float | None]


def leave_one_out(names: Sequence[str]) -> list[tuple[list[str], str]]:
    """Return ``(training series, held-out series)`` for each series."""
    return [
        (list(names[:i]) + list(names[i + 1 :]), name) for i, name in enumerate(names)
    ]


def group_scores(
    scores: Mapping[str, RawScore], groups: Mapping[str, str], names: Sequence[str]
) -> dict[str, float | None]:
    """Return each group's normalised score over the series ``names``.

    Args:
        scores: Raw score per series.
        groups: Group of every series.
        names: The series to count.

    Returns:
        Per group present in ``names``, NAB's normalisation of its summed raw
        scores, ``None`` if it has no window there.

    """
    members: dict[str, list[RawScore]] = {}
    for name in names:
        members.setdefault(groups[name], []).append(scores[name])
    return {group: normalise_sum(items) for group, items in sorted(members.items())}


def objective(
    scores: Mapping[str, RawScore], groups: Mapping[str, str], names: Sequence[str]
) -> float:
    """Mean over groups (each weighing equally) of their normalised scores.

    Raises:
        InvalidRecordError: If no group has a window among ``names``.

    """
    values = [v for v in group_scores(scores, groups, names).values() if v is not None]
    if not values:
        raise InvalidRecordError("no label window in the series to choose on")
    return sum(values) / len(values)


def cross_validate(
    table: Mapping[str, Mapping[str, RawScore]], groups: Mapping[str, str]
) -> CrossValidation:
    """Leave-one-series-out cross-validation over a table of raw scores.

    Args:
        table: Per configuration (in order of preference for ties), the raw
            score of every series.
        groups: Group of every series.

    Returns:
        Choices per fold, held-out and in-sample scores per group.

    Raises:
        InvalidRecordError: If the table is empty or its configurations do
            not score the same series as ``groups``.

    """
    if not table:
        raise InvalidRecordError("no configuration to cross-validate")
    names = sorted(groups)
    for config, scores in table.items():
        if sorted(scores) != names:
            raise InvalidRecordError(f"configuration {config!r} scores other series")
    chosen: dict[str, str] = {}
    held_out: dict[str, RawScore] = {}
    for training, name in leave_one_out(names):
        best = max(table, key=lambda c: objective(table[c], groups, training))
        chosen[name] = best
        held_out[name] = table[best][name]
    default = max(table, key=lambda c: objective(table[c], groups, names))
    return CrossValidation(
        configurations=len(table),
        chosen=chosen,
        held_out=held_out,
        cv_scores=group_scores(held_out, groups, names),
        default=default,
        in_sample_scores=group_scores(table[default], groups, names),
    )
