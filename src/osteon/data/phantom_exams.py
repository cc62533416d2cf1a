"""Synthetic multi-series exams with a finding planted in one slice of one series (2.5D / exam-fusion truth).

Every exam has ``series`` (e.g. sagittal, coronal, axial), each a stack of ``slices`` grey ``size × size`` slices of
smooth anatomy-like texture. In positive exams a small bright lesion is drawn in ONE random slice of the
``finding_series`` only; the other series carry no signal. A model must find the slice (2.5D pooling) and the
fusion must learn which series matters.
"""

from __future__ import annotations

import numpy as np
from scipy.ndimage import gaussian_filter


def make_exam_phantoms(
    rng: np.random.Generator,
    n_exams: int,
    *,
    series: tuple[str, ...] = ("sagittal", "coronal", "axial"),
    slices: int = 8,
    size: int = 32,
    finding_series: str = "sagittal",
    prevalence: float = 0.5,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``images`` ``(N, len(series), slices, size, size)`` float32 in [0, 1], ``labels`` ``(N,)`` 0/1 and
    ``finding_slice`` ``(N,)`` (the planted slice, ``-1`` for negative exams)."""
    images = np.empty((n_exams, len(series), slices, size, size), dtype=np.float32)
    labels = (rng.random(n_exams) < prevalence).astype(np.int64)
    where = np.full(n_exams, -1, dtype=np.int64)
    yy, xx = np.mgrid[:size, :size]
    target = series.index(finding_series)
    for i in range(n_exams):
        for s in range(len(series)):
            base = gaussian_filter(rng.standard_normal((slices, size, size)), (1.0, 3.0, 3.0)) * 0.4 + 0.4
            images[i, s] = np.clip(base + rng.normal(0, 0.04, base.shape), 0, 1)
        if labels[i]:
            k = int(rng.integers(slices))
            cy, cx = rng.integers(size // 4, 3 * size // 4, 2)
            lesion = np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * (size / 16) ** 2))
            images[i, target, k] = np.clip(images[i, target, k] + 0.6 * lesion, 0, 1)
            where[i] = k
    return images, labels, where
