"""Data preparation for a run: the Manifest, its split, the rows that can be used, decoded images."""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from osteon.data.adapters import load_dataset
from osteon.data.manifest import SPLITS, Manifest
from osteon.data.splits import apply_split_file, make_splits
from osteon.engine.config import TrainConfig
from osteon.errors import ConfigError


@dataclass
class SplitDecision:
    """Which split was used and why (written to state.json and the report)."""

    source: str  # "dataset" | "file" | "generated"
    reason: str


def resolve_split(manifest: Manifest, cfg: TrainConfig, target: str) -> tuple[Manifest, SplitDecision]:
    """Use the dataset's own split when it covers every image and class; else a seeded grouped split.

    Order: an explicit ``split_file`` wins; then the dataset's split when every row has one, train
    and val are non-empty and train holds every class; otherwise a new split grouped by patient and
    duplicate content and stratified by the target (``osteon.data.splits.make_splits``).
    """
    if cfg.split_file:
        return apply_split_file(manifest, Path(cfg.split_file)), SplitDecision("file", f"from {cfg.split_file}")
    frame = manifest.frame
    problem = _split_problem(frame, target, cfg.task)
    if problem is None:
        return manifest, SplitDecision("dataset", "the dataset's own split covers every image and class")
    stratify = target if cfg.task in ("classify", "grade") else None
    splits = make_splits(manifest, val=cfg.val_fraction, test=cfg.test_fraction, stratify=stratify, seed=cfg.seed)
    reason = (
        f"generated (seed {cfg.seed}, val {cfg.val_fraction}, test {cfg.test_fraction}, grouped by patient and "
        f"duplicate content, stratified by {stratify}) because {problem}"
    )
    warnings.warn(f"{manifest.name}: split {reason}.", stacklevel=2)
    return manifest.with_columns(split=splits.to_numpy()), SplitDecision("generated", reason)


def _split_problem(frame: pd.DataFrame, target: str, task: str) -> str | None:
    if "split" not in frame or frame["split"].isna().all():
        return "the dataset has no split"
    labelled = frame[frame[target].notna()]
    missing = int(labelled["split"].isna().sum())
    if missing:
        return f"{missing} labelled images have no split"
    for name in ("train", "val"):
        if not (labelled["split"] == name).any():
            return f"its split has no {name!r} part"
    if task in ("classify", "grade"):
        all_classes = set(labelled[target].astype(str))
        train_classes = set(labelled.loc[labelled["split"] == "train", target].astype(str))
        if all_classes - train_classes:
            return f"classes {sorted(all_classes - train_classes)} are missing from its train part"
    return None


def load_manifest(cfg: TrainConfig) -> Manifest:
    """The Manifest of ``cfg.data`` (format detected unless ``cfg.format`` is given)."""
    return load_dataset(cfg.data, format=cfg.format)


def check_splits_present(manifest: Manifest) -> None:
    counts = {s: int((manifest.frame["split"] == s).sum()) for s in SPLITS}
    if counts["train"] == 0 or counts["val"] == 0:
        raise ConfigError(
            f"{manifest.name}: the split has {counts}; training needs train and val images. "
            "Fix: lower --val-fraction/--test-fraction or add data."
        )


def excluded_rows(frame: pd.DataFrame, rows: np.ndarray, reason: str | list[str]) -> pd.DataFrame:
    """Rows left out, with the reason, for ``excluded.csv``."""
    out = frame.iloc[rows][["image"]].copy()
    out["reason"] = reason
    return out
