"""Synthetic multi-series exams with a finding planted in one slice of one series (2.5D / exam-fusion truth).

Every exam has ``series`` (e.g. sagittal, coronal, axial), each a stack of ``slices`` grey ``size × size`` slices of
smooth anatomy-like texture. In positive exams a small bright lesion is drawn in ONE random slice of the
``finding_series`` only; the other series carry no signal. A model must find the slice (2.5D pooling) and the
fusion must learn which series matters.
"""

from __future__ import annotations

from pathlib import Path

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


def make_exam_dataset(
    out: str | Path,
    *,
    exams: int = 24,
    series: tuple[str, ...] = ("sagittal", "coronal", "axial"),
    slices: int = 6,
    size: int = 32,
    finding_series: str = "sagittal",
    seed: int = 0,
) -> Path:
    """Write phantom exams as one NIfTI per series plus ``manifest.csv`` (one row per series): ``image``,
    ``patient_id``, ``study_id`` (the exam), ``series``, ``label`` (the exam's, 0/1), ``finding_slice``, ``split``
    (60/20/20 by exam). Returns the manifest path; select rows by ``series`` for a one-series run."""
    import pandas as pd

    from osteon.data.phantom_volumes import save_nifti
    from osteon.data.volumes import Volume

    out = Path(out)
    images, labels, where = make_exam_phantoms(
        np.random.default_rng(seed), exams, series=series, slices=slices, size=size, finding_series=finding_series
    )
    spacing = (3.0, 0.5, 0.5)
    affine = np.diag([-spacing[2], -spacing[1], spacing[0], 1.0])[:, [2, 1, 0, 3]]
    rows = []
    for i in range(exams):
        fraction = i / max(1, exams)
        split = "train" if fraction < 0.6 else ("val" if fraction < 0.8 else "test")
        for s, name in enumerate(series):
            relative = f"exams/E{i:03d}_{name}.nii.gz"
            save_nifti(Volume(images[i, s], spacing, affine.copy(), None, {"phantom": "exam"}), out / relative)
            rows.append(
                {
                    "image": relative,
                    "patient_id": f"P{i:03d}",
                    "study_id": f"E{i:03d}",
                    "series": name,
                    "label": int(labels[i]),
                    "finding_slice": int(where[i]) if name == finding_series else -1,
                    "split": split,
                }
            )
    pd.DataFrame(rows).to_csv(out / "manifest.csv", index=False)
    return out / "manifest.csv"
