"""Shared plumbing of ``osteon.metrics``: the undefined-metric policy, input checks, batched forms.

Policy for undefined metrics: a metric that has no value on the data it is given (AUC with one
class present, PPV with no predicted positive, kappa when the expected agreement is total) returns
``float("nan")`` and warns with :class:`UndefinedMetricWarning`. It never raises and never invents a
value (sklearn's ``zero_division=0`` would bias bootstrap intervals). Inputs that are *wrong* (shapes
that differ, labels out of range, NaN scores) raise :class:`MetricInputError`.

Batched forms: a metric may carry a vectorised twin, ``batched(weights, *arrays, **kwargs)``, where
``weights`` is a ``(B, N)`` array of non-negative integer row counts (one bootstrap resample per row)
and the result has shape ``(B,)`` (or ``(B, K)``). With frequency weights a resample never has to be
materialised, so 1000 resamples cost one matrix pass instead of 1000 Python calls.
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Callable
from typing import Any, TypeVar

import numpy as np
from sklearn.exceptions import UndefinedMetricWarning as _SklearnUndefinedMetricWarning

from osteon.errors import OsteonError

F = TypeVar("F", bound=Callable[..., Any])

BATCHED_ATTR = "__osteon_batched__"


class UndefinedMetricWarning(_SklearnUndefinedMetricWarning):
    """A metric is undefined on the data it was given and was returned as ``nan``.

    Subclasses scikit-learn's warning of the same name, so a filter on either one catches both.
    """


class MetricInputError(OsteonError, ValueError):
    """The arrays given to a metric are malformed (shape, length, label range, non-finite values)."""


def undefined(metric: str, reason: str, *, stacklevel: int = 3) -> float:
    """Warn that ``metric`` is undefined because of ``reason`` and return ``nan``."""
    warnings.warn(f"{metric} is undefined: {reason}; returning nan.", UndefinedMetricWarning, stacklevel=stacklevel)
    return float("nan")


def batched(batched_fn: Callable[..., np.ndarray]) -> Callable[[F], F]:
    """Attach a vectorised form ``batched_fn(weights (B, N), *arrays, **kwargs) -> (B, ...)`` to a metric."""

    def decorator(fn: F) -> F:
        setattr(fn, BATCHED_ATTR, batched_fn)
        return fn

    return decorator


def get_batched(metric_fn: Callable[..., Any]) -> Callable[..., np.ndarray] | None:
    """Return the vectorised form of ``metric_fn`` (also through ``functools.partial``), or None."""
    if isinstance(metric_fn, functools.partial):
        inner = get_batched(metric_fn.func)
        if inner is None or metric_fn.args:
            return None
        return functools.partial(inner, **metric_fn.keywords)
    return getattr(metric_fn, BATCHED_ATTR, None)


def safe_ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """Elementwise ``num / den`` with ``nan`` where ``den == 0`` (no warning: batched use)."""
    num = np.asarray(num, dtype=float)
    den = np.asarray(den, dtype=float)
    out = np.full(np.broadcast(num, den).shape, np.nan)
    np.divide(num, den, out=out, where=den != 0)
    return out


def as_array(name: str, values: Any, *, ndim: int | tuple[int, ...] = 1) -> np.ndarray:
    """``np.asarray(values)`` checked to have ``ndim`` dimensions (an int or allowed tuple)."""
    arr = np.asarray(values)
    allowed = (ndim,) if isinstance(ndim, int) else ndim
    if arr.ndim not in allowed:
        shapes = " or ".join(f"{d}-D" for d in allowed)
        raise MetricInputError(f"{name} must be a {shapes} array; got shape {arr.shape}. Pass one value per sample.")
    return arr


def check_lengths(**arrays: np.ndarray) -> int:
    """Raise unless every array has the same length (first axis); return that length."""
    lengths = {name: len(arr) for name, arr in arrays.items()}
    if len(set(lengths.values())) > 1:
        shown = ", ".join(f"{name}={n}" for name, n in lengths.items())
        raise MetricInputError(f"Arrays must have one entry per sample; got lengths {shown}. Align them first.")
    return next(iter(lengths.values()))


def check_finite(name: str, values: np.ndarray) -> np.ndarray:
    """Return ``values`` as float, raising if any value is NaN or infinite."""
    try:
        arr = np.asarray(values, dtype=float)
    except (TypeError, ValueError) as exc:
        raise MetricInputError(f"{name} must be numeric; got dtype {np.asarray(values).dtype}.") from exc
    bad = ~np.isfinite(arr)
    if bad.any():
        rows = np.flatnonzero(bad.reshape(len(arr), -1).any(axis=1))[:5].tolist()
        raise MetricInputError(
            f"{name} has {int(bad.sum())} NaN/infinite value(s) (first rows {rows}). "
            "Drop or impute those samples before computing metrics."
        )
    return arr


def check_binary(name: str, values: Any) -> np.ndarray:
    """Return binary labels as an int array of 0/1, raising on any other value."""
    arr = as_array(name, values)
    if arr.dtype == bool:
        return arr.astype(np.int64)
    uniq = np.unique(arr)
    if not np.isin(uniq, [0, 1]).all():
        raise MetricInputError(
            f"{name} must hold binary labels 0/1 (or booleans); got values {uniq[:10].tolist()}. "
            "Map the positive class to 1 and the rest to 0."
        )
    return arr.astype(np.int64)


def check_labels(name: str, values: Any, n_classes: int | None = None) -> np.ndarray:
    """Return integer class indices in ``[0, n_classes)``, raising on anything else."""
    arr = as_array(name, values)
    if arr.size and arr.dtype.kind not in "iub":
        as_float = np.asarray(arr, dtype=float) if arr.dtype.kind == "f" else None
        if as_float is None or not np.all(np.isfinite(as_float)) or not np.all(as_float == np.round(as_float)):
            raise MetricInputError(
                f"{name} must hold integer class indices 0..C-1; got dtype {arr.dtype} "
                f"(first values {arr[:5].tolist()}). Encode class names as indices first."
            )
    arr = arr.astype(np.int64)
    if arr.size and arr.min() < 0:
        raise MetricInputError(f"{name} must hold class indices >= 0; got {int(arr.min())}.")
    if n_classes is not None and arr.size and arr.max() >= n_classes:
        raise MetricInputError(
            f"{name} holds class index {int(arr.max())} but there are only {n_classes} classes (0..{n_classes - 1}). "
            "Pass the right number of classes or fix the labels."
        )
    return arr


def infer_n_classes(*label_arrays: np.ndarray, n_classes: int | None = None) -> int:
    """``n_classes`` if given, else ``max label + 1`` over all arrays (at least 1)."""
    if n_classes is not None:
        if n_classes < 1:
            raise MetricInputError(f"n_classes must be >= 1; got {n_classes}.")
        return int(n_classes)
    top = [int(a.max()) for a in label_arrays if a.size]
    return max(top, default=0) + 1
