"""Synthetic data shared by the metric tests (no files, no real data)."""

from __future__ import annotations

import numpy as np
import pytest


@pytest.fixture
def binary_data() -> tuple[np.ndarray, np.ndarray]:
    """400 samples, ~40 % positive, informative scores with ties (rounded to 2 decimals)."""
    rng = np.random.default_rng(7)
    y = (rng.random(400) < 0.4).astype(int)
    score = np.round(1 / (1 + np.exp(-(rng.normal(size=400) + 1.2 * y))), 2)
    return y, score


def clustered_binary(n_patients: int, images_per_patient: int, seed: int) -> tuple[np.ndarray, ...]:
    """Patients with many strongly correlated images: label and most of the score are per patient."""
    rng = np.random.default_rng(seed)
    patient_label = (rng.random(n_patients) < 0.5).astype(int)
    patient_effect = rng.normal(size=n_patients) + 0.8 * patient_label
    groups = np.repeat(np.arange(n_patients), images_per_patient)
    y = patient_label[groups]
    score = patient_effect[groups] + 0.05 * rng.normal(size=len(groups))
    return y, score, groups


@pytest.fixture
def make_clustered():  # type: ignore[no-untyped-def]
    """Factory fixture: ``make_clustered(n_patients, images_per_patient, seed) -> (y, score, groups)``."""
    return clustered_binary
