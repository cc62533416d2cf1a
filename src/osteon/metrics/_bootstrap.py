"""Bootstrap confidence intervals and paired tests, resampling patients (groups) or rows.

A resample is a vector of row *counts*: row ``i`` appears ``counts[i]`` times. Resampling by group
draws ``n_groups`` groups with replacement and gives every row of a group the number of times its
group was drawn, so a patient drawn twice contributes all its images twice. Metrics that carry a
batched form (see ``_common.batched``) are evaluated on a whole ``(B, N)`` block of counts at once;
any other metric is called once per resample on the rows ``np.repeat(arange(N), counts)``.

Resamples on which the metric is undefined (``nan``) are dropped and counted (``n_valid``); the
interval is then conditional on the metric being defined, and a warning is raised when more than 1 %
of the resamples were dropped.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd
from sklearn.exceptions import UndefinedMetricWarning as _SklearnUndefinedMetricWarning

from osteon.metrics._common import MetricInputError, UndefinedMetricWarning, check_lengths, get_batched

BootstrapMethod = Literal["percentile", "basic"]
_METHODS = ("percentile", "basic")
_CHUNK_ELEMENTS = 4_000_000  # counts per block: (B_chunk, N) float64 stays ~32 MB
_MAX_DROPPED_FRACTION = 0.01


@dataclass(frozen=True)
class ConfidenceInterval:
    """A point estimate with its interval.

    Attributes:
        estimate: The metric on the full data.
        low: Lower bound of the interval (``nan`` when undefined).
        high: Upper bound of the interval.
        n_resamples: Resamples drawn (0 for an analytic interval such as DeLong's).
        n_valid: Resamples on which the metric was defined and that entered the interval.
    """

    estimate: float
    low: float
    high: float
    n_resamples: int = 0
    n_valid: int = 0

    def as_dict(self) -> dict[str, float | int]:
        """Plain-Python dict ``{estimate, low, high, n_resamples, n_valid}`` (JSON-able)."""
        return {
            "estimate": float(self.estimate),
            "low": float(self.low),
            "high": float(self.high),
            "n_resamples": int(self.n_resamples),
            "n_valid": int(self.n_valid),
        }


def _group_codes(groups: Any, n_rows: int) -> tuple[np.ndarray, int]:
    """Integer code per row (0..G-1) and G; rows without a group are an error."""
    arr = np.asarray(groups, dtype=object)
    if arr.ndim != 1 or len(arr) != n_rows:
        raise MetricInputError(
            f"groups must give one patient id per row: expected {n_rows} values, got shape {arr.shape}."
        )
    codes, uniques = pd.factorize(arr, use_na_sentinel=True)
    if (codes < 0).any():
        rows = np.flatnonzero(codes < 0)[:5].tolist()
        raise MetricInputError(
            f"groups has {int((codes < 0).sum())} missing patient id(s) (first rows {rows}). "
            "Fill them (one id per patient) or pass groups=None to resample rows."
        )
    return codes.astype(np.int64), len(uniques)


def iter_resample_counts(
    n_rows: int, *, groups: Any = None, n_resamples: int = 1000, seed: int | None = 0
) -> Iterator[np.ndarray]:
    """Yield blocks of bootstrap row counts, ``(B_chunk, n_rows)`` int64, ``n_resamples`` rows in total.

    Args:
        n_rows: Number of rows (images) in the data.
        groups: Optional ``(n_rows,)`` patient ids. When given, groups are drawn with replacement
            and each row gets its group's draw count; otherwise rows are drawn.
        n_resamples: Total number of resamples.
        seed: Seed of ``numpy.random.default_rng``; the same seed gives the same resamples.
    """
    if n_resamples < 1:
        raise MetricInputError(f"n_resamples must be >= 1; got {n_resamples}.")
    rng = np.random.default_rng(seed)
    if groups is None:
        codes, n_units = None, n_rows
    else:
        codes, n_units = _group_codes(groups, n_rows)
    chunk = max(1, _CHUNK_ELEMENTS // max(n_rows, n_units, 1))
    done = 0
    while done < n_resamples:
        b = min(chunk, n_resamples - done)
        draws = rng.integers(0, n_units, size=(b, n_units)) if n_units else np.zeros((b, 0), dtype=np.int64)
        flat = (draws + (np.arange(b) * n_units)[:, None]).ravel()
        unit_counts = np.bincount(flat, minlength=b * n_units).reshape(b, n_units)
        yield unit_counts if codes is None else unit_counts[:, codes]
        done += b


def bootstrap_resample_counts(
    n_rows: int, *, groups: Any = None, n_resamples: int = 1000, seed: int | None = 0
) -> np.ndarray:
    """All bootstrap row counts as one ``(n_resamples, n_rows)`` int64 array (see ``iter_resample_counts``).

    Example:
        >>> counts = bootstrap_resample_counts(4, groups=["a", "a", "b", "c"], n_resamples=2, seed=0)
        >>> counts.shape, bool((counts[:, 0] == counts[:, 1]).all())
        ((2, 4), True)
    """
    return np.concatenate(list(iter_resample_counts(n_rows, groups=groups, n_resamples=n_resamples, seed=seed)))


def _prepare_arrays(arrays: Sequence[Any]) -> tuple[list[np.ndarray], int]:
    if not arrays:
        raise MetricInputError("bootstrap needs at least one array (e.g. y_true, y_score).")
    arrs = [np.asarray(a) for a in arrays]
    for i, a in enumerate(arrs):
        if a.ndim == 0:
            raise MetricInputError(f"array {i} passed to the bootstrap is a scalar; pass one value per row.")
    n = check_lengths(**{f"array_{i}": a for i, a in enumerate(arrs)})
    return arrs, n


def resample_distribution(
    stat_fns: Mapping[str, Callable[[np.ndarray], np.ndarray]],
    n_rows: int,
    *,
    groups: Any = None,
    n_resamples: int = 1000,
    seed: int | None = 0,
) -> dict[str, np.ndarray]:
    """Evaluate several batched statistics on the same resamples.

    Args:
        stat_fns: name -> ``fn(counts (B, n_rows) float) -> (B, ...)``.
        n_rows, groups, n_resamples, seed: As in :func:`iter_resample_counts`.

    Returns:
        name -> ``(n_resamples, ...)`` array of resampled values (``nan`` where undefined).
    """
    parts: dict[str, list[np.ndarray]] = {name: [] for name in stat_fns}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", _SklearnUndefinedMetricWarning)
        for counts in iter_resample_counts(n_rows, groups=groups, n_resamples=n_resamples, seed=seed):
            weights = counts.astype(float)
            for name, fn in stat_fns.items():
                parts[name].append(np.asarray(fn(weights), dtype=float))
    return {name: np.concatenate(vals) for name, vals in parts.items()}


def _metric_distribution(
    metric_fn: Callable[..., float],
    arrays: list[np.ndarray],
    *,
    groups: Any,
    n_resamples: int,
    seed: int | None,
    vectorize: bool,
) -> np.ndarray:
    """``(n_resamples,)`` resampled values of ``metric_fn(*arrays)``."""
    n = len(arrays[0])
    fast = get_batched(metric_fn) if vectorize else None
    if fast is not None:
        return resample_distribution(
            {"m": lambda w: fast(w, *arrays)}, n, groups=groups, n_resamples=n_resamples, seed=seed
        )["m"]
    rows = np.arange(n)
    values: list[float] = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", _SklearnUndefinedMetricWarning)
        for counts in iter_resample_counts(n, groups=groups, n_resamples=n_resamples, seed=seed):
            for row_counts in counts:
                idx = np.repeat(rows, row_counts)
                values.append(float(metric_fn(*(a[idx] for a in arrays))))
    return np.asarray(values, dtype=float)


def summarise(
    estimate: float,
    values: np.ndarray,
    *,
    confidence: float = 0.95,
    method: BootstrapMethod = "percentile",
    name: str = "metric",
) -> ConfidenceInterval:
    """Turn resampled values ``(B,)`` into a :class:`ConfidenceInterval` around ``estimate``."""
    _check_options(confidence, method)
    values = np.asarray(values, dtype=float).ravel()
    valid = values[np.isfinite(values)]
    n_resamples, n_valid = len(values), len(valid)
    if n_resamples and n_resamples - n_valid > _MAX_DROPPED_FRACTION * n_resamples:
        warnings.warn(
            f"{name}: {n_resamples - n_valid} of {n_resamples} bootstrap resamples were undefined and dropped; "
            "the interval is conditional on the metric being defined (few patients or a rare class?).",
            UndefinedMetricWarning,
            stacklevel=3,
        )
    estimate = float(estimate)
    if n_valid == 0 or not np.isfinite(estimate):
        return ConfidenceInterval(estimate, float("nan"), float("nan"), n_resamples, n_valid)
    alpha = 1.0 - confidence
    q_low, q_high = np.quantile(valid, [alpha / 2, 1 - alpha / 2])
    if method == "basic":
        q_low, q_high = 2 * estimate - q_high, 2 * estimate - q_low
    return ConfidenceInterval(estimate, float(q_low), float(q_high), n_resamples, n_valid)


def _check_options(confidence: float, method: str) -> None:
    if not 0.0 < confidence < 1.0:
        raise MetricInputError(f"confidence must be in (0, 1), e.g. 0.95; got {confidence}.")
    if method not in _METHODS:
        raise MetricInputError(f"method must be one of {_METHODS}; got {method!r}.")


def bootstrap_ci(
    metric_fn: Callable[..., float],
    *arrays: Any,
    groups: Any = None,
    n_resamples: int = 1000,
    confidence: float = 0.95,
    seed: int | None = 0,
    method: BootstrapMethod = "percentile",
    vectorize: bool = True,
) -> ConfidenceInterval:
    """Bootstrap confidence interval of ``metric_fn(*arrays)``, resampling patients when ``groups`` is given.

    Args:
        metric_fn: ``fn(*arrays) -> float``, e.g. ``osteon.metrics.roc_auc_score`` or a
            ``functools.partial`` of a metric with keyword options.
        *arrays: Arrays with one entry per row along axis 0 (e.g. ``y_true (N,)``, ``y_score (N,)``
            or ``proba (N, C)``).
        groups: Optional ``(N,)`` patient ids: patients are resampled with replacement and all the
            rows of a drawn patient come along (a patient drawn twice contributes twice).
        n_resamples: Number of bootstrap resamples.
        confidence: Two-sided confidence level in (0, 1).
        seed: Seed of the resampling; the same seed gives the same interval.
        method: ``"percentile"`` (quantiles of the resampled values) or ``"basic"`` (reflected
            around the estimate).
        vectorize: Use the metric's batched form when it has one (identical values, much faster);
            ``False`` forces one call per resample.

    Returns:
        ConfidenceInterval(estimate, low, high, n_resamples, n_valid); resamples where the metric is
        ``nan`` are dropped and not counted in ``n_valid``.

    Example:
        >>> from osteon.metrics import roc_auc_score
        >>> y = [0, 1] * 10
        >>> score = [0.1, 0.3, 0.4, 0.35, 0.2, 0.8, 0.5, 0.9, 0.3, 0.6] * 2
        >>> ci = bootstrap_ci(roc_auc_score, y, score, n_resamples=200)
        >>> ci.low <= ci.estimate <= ci.high
        True
    """
    _check_options(confidence, method)
    arrs, _ = _prepare_arrays(arrays)
    estimate = float(metric_fn(*arrs))
    values = _metric_distribution(
        metric_fn, arrs, groups=groups, n_resamples=n_resamples, seed=seed, vectorize=vectorize
    )
    name = str(getattr(metric_fn, "__name__", None) or getattr(getattr(metric_fn, "func", None), "__name__", "metric"))
    return summarise(estimate, values, confidence=confidence, method=method, name=name)


def paired_bootstrap_test(
    metric_fn: Callable[..., float],
    y_true: Any,
    score_a: Any,
    score_b: Any,
    *,
    groups: Any = None,
    n_resamples: int = 1000,
    confidence: float = 0.95,
    seed: int | None = 0,
    vectorize: bool = True,
) -> tuple[float, ConfidenceInterval, float]:
    """Paired bootstrap comparison of two models scored on the same samples.

    Both models are evaluated on the *same* resamples (by patient when ``groups`` is given), so the
    correlation between them is kept.

    Args:
        metric_fn: ``fn(y_true, score) -> float`` (higher or lower is better: the test is two-sided).
        y_true: ``(N,)`` (or ``(N, L)``) ground truth.
        score_a, score_b: Scores/predictions of models A and B, same shape as ``metric_fn`` expects.
        groups, n_resamples, confidence, seed, vectorize: As in :func:`bootstrap_ci`.

    Returns:
        ``(diff, ci, p_value)``: ``diff = metric(A) - metric(B)`` on the full data; ``ci`` its
        percentile interval; ``p_value`` two-sided, from the resampled differences shifted to the
        null (``(1 + #{|d* - diff| >= |diff|}) / (1 + n_valid)``), so identical models give 1.
    """
    arrs, _ = _prepare_arrays([y_true, score_a, score_b])
    y, a, b = arrs
    diff = float(metric_fn(y, a)) - float(metric_fn(y, b))
    fast = get_batched(metric_fn) if vectorize else None
    if fast is not None:
        dist = resample_distribution(
            {"a": lambda w: fast(w, y, a), "b": lambda w: fast(w, y, b)},
            len(y),
            groups=groups,
            n_resamples=n_resamples,
            seed=seed,
        )
        values = dist["a"] - dist["b"]
    else:
        values = _metric_distribution(
            lambda yy, aa, bb: float(metric_fn(yy, aa)) - float(metric_fn(yy, bb)),
            arrs,
            groups=groups,
            n_resamples=n_resamples,
            seed=seed,
            vectorize=False,
        )
    name = getattr(metric_fn, "__name__", "metric") + " difference"
    ci = summarise(diff, values, confidence=confidence, method="percentile", name=name)
    return diff, ci, paired_p_value(diff, values)


def paired_p_value(diff: float, values: np.ndarray) -> float:
    """Two-sided p of a paired-bootstrap difference ``diff`` from its resampled values (non-finite dropped).

    The resampled differences are shifted to the null: ``(1 + #{|d* - diff| >= |diff|}) / (1 + n_valid)``, so
    identical models give 1; ``nan`` when ``diff`` or every resample is undefined.
    """
    valid = np.asarray(values, dtype=float)
    valid = valid[np.isfinite(valid)]
    if not np.isfinite(diff) or len(valid) == 0:
        return float("nan")
    extreme = int(np.sum(np.abs(valid - diff) >= abs(diff) - 1e-12))
    return float(min(1.0, (1 + extreme) / (1 + len(valid))))
