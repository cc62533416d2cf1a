"""Engine hooks shared by the image-level tasks (classify, grade, regress): one label or number per image.

Tasks with other outputs (segment, detect) implement the same hooks their own way; the engine only
calls the hooks (see :class:`osteon.tasks.base.Task`).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn
from torch.utils.data import Dataset

from osteon.data.datasets import DecodedImages, ImageDataset
from osteon.data.manifest import Manifest
from osteon.tasks.base import OutputWriter, Prediction, TaskBase, TaskState, make_model_for


class ImageLevelTask(TaskBase):
    """Defaults for tasks whose model is :class:`~osteon.models.ImageModel` and whose target is per image.

    Subclasses provide ``targets``, ``loss``, ``scores``, ``predict``, ``monitor_score``, ``prediction_frame``,
    ``evaluate`` and ``choose_operating_point``.
    """

    state: TaskState
    colour_input = True

    # the subclass contract (declared here for type checkers)
    num_outputs: int

    def targets(self, manifest: Manifest) -> np.ndarray:
        raise NotImplementedError

    def loss(self, outputs: torch.Tensor, targets: torch.Tensor, weights: torch.Tensor | None = None) -> torch.Tensor:
        raise NotImplementedError

    def scores(self, outputs: torch.Tensor) -> np.ndarray:
        raise NotImplementedError

    def monitor_score(self, scores: np.ndarray, targets: np.ndarray) -> float:
        raise NotImplementedError

    def prediction_frame(self, scores: np.ndarray) -> pd.DataFrame:
        raise NotImplementedError

    def predict(self, outputs: torch.Tensor, **kwargs: Any) -> list[Prediction]:
        raise NotImplementedError

    # -- hooks the engine calls -----------------------------------------------------------------
    def build_model(self, *, model: str, pretrained: str | None, covariate_dim: int, dropout: float) -> nn.Module:
        return make_model_for(self, model=model, pretrained=pretrained, covariate_dim=covariate_dim, dropout=dropout)

    def missing_targets(self, manifest: Manifest) -> np.ndarray:
        """Boolean per row: no usable target (excluded from training with a reason)."""
        targets = self.targets(manifest)
        if targets.ndim == 2:
            return np.isnan(targets).any(axis=1)
        return np.isnan(targets) if targets.dtype.kind == "f" else targets < 0

    def make_dataset(
        self,
        manifest: Manifest,
        rows: np.ndarray,
        decoded: DecodedImages,
        *,
        covariates: np.ndarray | None,
        augment: Callable[[torch.Tensor], torch.Tensor] | None,
        prep: Any,
    ) -> Dataset:
        """Dataset of the given Manifest rows; ``decoded`` holds their images in the same order.

        Without the target column (plain prediction) the items carry a dummy target.
        """
        if self.state.target in manifest.frame:
            targets = self.targets(manifest)[rows]
        else:
            targets = np.zeros(len(rows), dtype=np.float32)
        return ImageDataset(
            decoded.stack,
            targets,
            prep,
            covariates=covariates,
            augment=augment,
            indices=rows,
        )

    def training_loss(
        self, model: nn.Module, batch: dict[str, Any], class_weights: torch.Tensor | None
    ) -> torch.Tensor:
        return self.loss(model(batch["image"], batch.get("covariates")), batch["target"], class_weights)

    def validation_records(self, model: nn.Module, batch: dict[str, Any]) -> list[Any]:
        """Per-image records (picklable) that :meth:`monitor_records` scores at the end of validation."""
        scores = self.scores(model(batch["image"], batch.get("covariates")))
        targets = batch["target"].cpu().numpy()
        return list(zip(scores, targets, strict=True))

    def monitor_records(self, records: list[Any]) -> float:
        scores = np.stack([r[0] for r in records])
        targets = np.stack([r[1] for r in records])
        return self.monitor_score(scores, targets)

    @torch.inference_mode()
    def predict_rows(
        self,
        model: nn.Module,
        manifest: Manifest,
        dataset: Dataset,
        *,
        batch_size: int = 32,
        outputs: OutputWriter | None = None,
    ) -> pd.DataFrame:
        """Predictions table of a dataset made by :meth:`make_dataset` (its ``indices`` are Manifest rows).

        Columns: identifiers, ``truth`` (when the Manifest has the target), the task's own columns. Image-level
        tasks have no file outputs (``outputs`` is unused).
        """
        from torch.utils.data import DataLoader

        was_training = model.training
        model.eval()
        chunks = [
            self.scores(model(batch["image"], batch.get("covariates")))
            for batch in DataLoader(dataset, batch_size=batch_size, shuffle=False)
        ]
        model.train(was_training)
        scores = np.concatenate(chunks) if chunks else np.zeros((0, self.num_outputs), dtype=np.float32)
        rows = dataset.indices  # type: ignore[attr-defined]
        return pd.concat(
            [
                identity_frame(manifest, rows, self.state, numeric=self.numeric_truth),
                self.prediction_frame(scores).reset_index(drop=True),
            ],
            axis=1,
        )

    @torch.inference_mode()
    def predict_image(
        self, model: nn.Module, path: str | Path, *, prep: Any, covariates: torch.Tensor | None = None
    ) -> Prediction:
        """The typed prediction of one image file (``covariates``: ``(1, D)`` encoded, or ``None``)."""
        from osteon.data.transforms import input_batch, load_unit_image

        unit, _ = load_unit_image(path, prep)
        was_training = model.training
        model.eval()
        outputs = model(input_batch(unit, prep), covariates)
        model.train(was_training)
        return self.predict(outputs)[0]


ID_COLUMNS = ("image", "patient_id", "study_id", "split")


def identity_frame(manifest: Manifest, rows: np.ndarray, state: TaskState, *, numeric: bool) -> pd.DataFrame:
    """Identifier columns of ``rows`` plus ``truth`` (the target column) when the Manifest has it."""
    from osteon.tasks._targets import as_label_strings

    source = manifest.frame.iloc[rows]
    frame = pd.DataFrame({c: source[c].to_numpy() for c in ID_COLUMNS if c in source})
    if state.target in source:
        truth = source[state.target]
        frame["truth"] = (
            pd.to_numeric(truth, errors="coerce").to_numpy() if numeric else as_label_strings(truth).to_numpy()
        )
    return frame.reset_index(drop=True)
