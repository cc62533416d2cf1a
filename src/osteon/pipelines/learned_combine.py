"""``combine: learned``: a region stage's crops → one image score by a logistic regression fitted on validation.

``max`` trusts the single most suspicious crop; ``mean`` dilutes one true lesion among false regions. A learned rule
weighs what both ignore: how many regions the localiser proposed, how confident it was about them, and the
noisy-or of the crop probabilities. It is fitted by ``osteon pipeline train`` after every stage is trained, on the
Manifest's ``val`` split run through the pipeline (images with at least one region; the others keep the stage's
``empty_score``), and saved beside the stage's run as ``pipeline_combine.json``. The same file keeps the
image-level threshold of each finding on a region stage, chosen on those validation images (Youden): the crop
classifier's own operating point was chosen on crops, not images. scikit-learn's
``LogisticRegression`` fits it; the parameters are stored as plain numbers so a saved pipeline reproduces them.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from osteon.pipelines.schema import PipelineError

FILE = "pipeline_combine.json"
#: Per image, from its regions' classifier probabilities ``p`` and localiser scores ``s``.
FEATURES = ("max_p", "mean_p", "noisy_or_p", "max_s", "log1p_regions")


def region_features(probabilities: np.ndarray, region_scores: np.ndarray) -> np.ndarray:
    """``FEATURES`` of one image (probabilities that are not finite are left out)."""
    p = np.asarray(probabilities, dtype=np.float64)
    s = np.asarray(region_scores, dtype=np.float64)
    keep = np.isfinite(p)
    p = p[keep]
    if len(s) == len(keep):
        s = s[keep]
    if not len(p):
        return np.full(len(FEATURES), np.nan)
    s = np.clip(np.nan_to_num(s, nan=0.0), 0.0, 1.0) if len(s) else np.zeros(1)
    noisy_or = 1.0 - float(np.prod(1.0 - np.clip(p, 0.0, 1.0)))
    return np.array([p.max(), p.mean(), noisy_or, s.max(), math.log1p(len(p))])


@dataclass(frozen=True)
class LearnedCombine:
    """A fitted rule: ``sigmoid(coef · features + intercept)``."""

    coef: tuple[float, ...]
    intercept: float
    n_images: int
    n_positive: int
    fitted_on: str = "val"
    features: tuple[str, ...] = FEATURES

    def __call__(self, probabilities: np.ndarray, region_scores: np.ndarray) -> float:
        x = region_features(probabilities, region_scores)
        if not np.isfinite(x).all():
            return math.nan
        z = float(np.dot(self.coef, x) + self.intercept)
        return 1.0 / (1.0 + math.exp(-max(min(z, 50.0), -50.0)))

    def to_json(self) -> dict[str, Any]:
        return asdict(self) | {"coef": list(self.coef), "features": list(self.features)}


def fit_learned_combine(features: np.ndarray, truth: np.ndarray, *, fitted_on: str = "val") -> LearnedCombine:
    """Fit the rule on ``(N, len(FEATURES))`` image features and 0/1 truth.

    Raises:
        PipelineError: fewer than two images of either class (nothing to learn from).
    """
    from sklearn.linear_model import LogisticRegression

    x = np.asarray(features, dtype=np.float64)
    y = np.asarray(truth, dtype=int)
    keep = np.isfinite(x).all(axis=1)
    x, y = x[keep], y[keep]
    if min(int(y.sum()), int(len(y) - y.sum())) < 2:
        raise PipelineError(
            f"combine: learned needs at least 2 positive and 2 negative {fitted_on} images with regions; got "
            f"{int(y.sum())} positive of {len(y)}. Fix: use combine: max, or a larger {fitted_on} split."
        )
    model = LogisticRegression(C=1.0, max_iter=1000).fit(x, y)
    return LearnedCombine(
        coef=tuple(float(c) for c in model.coef_[0]),
        intercept=float(model.intercept_[0]),
        n_images=len(y),
        n_positive=int(y.sum()),
        fitted_on=fitted_on,
    )


def save_learned_combine(run_dir: Path, pipeline: str, stage: str, rule: LearnedCombine) -> Path:
    """Add ``stage``'s rule to ``run_dir/pipeline_combine.json`` (one entry per pipeline stage using the run)."""
    path = Path(run_dir) / FILE
    saved = json.loads(path.read_text()) if path.is_file() else {}
    saved[f"{pipeline}/{stage}"] = rule.to_json()
    path.write_text(json.dumps(saved, indent=1))
    return path


def load_learned_combine(run_dir: Path, pipeline: str, stage: str) -> LearnedCombine | None:
    """The rule of ``pipeline/stage`` saved beside the run, or ``None`` when it was not fitted yet."""
    path = Path(run_dir) / FILE
    if not path.is_file():
        return None
    try:
        entry = json.loads(path.read_text()).get(f"{pipeline}/{stage}")
    except json.JSONDecodeError as exc:
        raise PipelineError(f"{path}: not valid JSON ({exc}). Fix: delete it and run osteon pipeline train.") from None
    if entry is None:
        return None
    if tuple(entry.get("features", ())) != FEATURES:
        raise PipelineError(f"{path}: the rule of {pipeline}/{stage} uses other features. Fix: refit it.")
    return LearnedCombine(
        coef=tuple(entry["coef"]),
        intercept=float(entry["intercept"]),
        n_images=int(entry["n_images"]),
        n_positive=int(entry["n_positive"]),
        fitted_on=str(entry.get("fitted_on", "val")),
    )


def save_finding_threshold(run_dir: Path, pipeline: str, finding: str, threshold: float, n_images: int) -> Path:
    """Store the image-level threshold of a region stage's finding, chosen on validation images, beside its run."""
    path = Path(run_dir) / FILE
    saved = json.loads(path.read_text()) if path.is_file() else {}
    saved[f"{pipeline}/finding:{finding}"] = {"threshold": float(threshold), "n_images": n_images, "chosen_on": "val"}
    path.write_text(json.dumps(saved, indent=1))
    return path


def load_finding_threshold(run_dir: Path, pipeline: str, finding: str) -> float | None:
    """The stored image-level threshold of ``finding``, or ``None``."""
    path = Path(run_dir) / FILE
    if not path.is_file():
        return None
    try:
        entry = json.loads(path.read_text()).get(f"{pipeline}/finding:{finding}")
    except json.JSONDecodeError as exc:
        raise PipelineError(f"{path}: not valid JSON ({exc}). Fix: delete it and run osteon pipeline train.") from None
    return None if entry is None else float(entry["threshold"])
