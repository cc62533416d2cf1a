"""Running a trained model over decoded images, and turning scores into a predictions table."""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch
from torch import nn
from torch.utils.data import DataLoader

from osteon.data.datasets import ImageDataset
from osteon.data.manifest import Manifest
from osteon.tasks.base import Task

ID_COLUMNS = ("image", "patient_id", "study_id", "split")


@torch.inference_mode()
def predict_dataset(model: nn.Module, task: Task, dataset: ImageDataset, *, batch_size: int = 32) -> np.ndarray:
    """Task scores for every item, in dataset order: ``(N, C)`` probabilities or ``(N,)`` values."""
    was_training = model.training
    model.eval()
    chunks = []
    for batch in DataLoader(dataset, batch_size=batch_size, shuffle=False):
        chunks.append(task.scores(model(batch["image"], batch.get("covariates"))))
    model.train(was_training)
    if not chunks:
        return np.zeros((0, task.num_outputs), dtype=np.float32)
    return np.concatenate(chunks)


def predictions_frame(manifest: Manifest, rows: np.ndarray, task: Task, scores: np.ndarray) -> pd.DataFrame:
    """One row per image: identifiers, ``truth`` (when the Manifest has the target), the task's columns."""
    source = manifest.frame.iloc[rows]
    frame = pd.DataFrame({c: source[c].to_numpy() for c in ID_COLUMNS if c in source})
    target = task.state.target
    if target in source:
        truth = source[target]
        frame["truth"] = (
            pd.to_numeric(truth, errors="coerce").to_numpy()
            if task.name == "regress"
            else (_as_strings(truth).to_numpy())
        )
    return pd.concat([frame.reset_index(drop=True), task.prediction_frame(scores).reset_index(drop=True)], axis=1)


def _as_strings(values: pd.Series) -> pd.Series:
    from osteon.tasks._targets import as_label_strings

    return as_label_strings(values)
