"""``regress``: one number per image (bone age, angle, joint-space width)."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import pandas as pd
import torch
from torch import nn

from osteon import metrics
from osteon.data.manifest import Manifest
from osteon.errors import ConfigError
from osteon.tasks._image import ImageLevelTask
from osteon.tasks._targets import patient_groups, target_column
from osteon.tasks.base import TASKS, Monitor, TaskState, ValuePrediction

_LOSSES = {"l1": nn.functional.l1_loss, "mse": nn.functional.mse_loss, "huber": nn.functional.smooth_l1_loss}


@TASKS.register("regress")
class RegressionTask(ImageLevelTask):
    """Predicts a standardised value; the target's train mean/std are kept so outputs are in its units."""

    name: ClassVar[str] = "regress"
    prediction_type: ClassVar[type | None] = ValuePrediction
    monitor: ClassVar[Monitor] = Monitor("MAE", "min")
    numeric_truth: ClassVar[bool] = True
    setup_on_train: ClassVar[bool] = True  # the target's mean/std come from the train split only

    @classmethod
    def setup(
        cls, manifest: Manifest, *, target: str | None, positive_class: str | None, loss: str | None
    ) -> TaskState:
        column = target_column(manifest, target, "target")
        values = pd.to_numeric(manifest.frame[column], errors="coerce")
        bad = manifest.frame[column].notna() & values.isna()
        if bad.any():
            row = int(np.flatnonzero(bad.to_numpy())[0])
            raise ConfigError(
                f"{manifest.name}: column {column!r} must be numeric for regression; row {row} has "
                f"{manifest.frame[column].iloc[row]!r}. Fix: clean the column or choose another --target."
            )
        infinite = np.flatnonzero(np.isinf(values.to_numpy(dtype=np.float64)))
        if len(infinite):
            rows = ", ".join(f"{r} ({manifest.frame['image'].iloc[r]})" for r in infinite[:5])
            raise ConfigError(
                f"{manifest.name}: column {column!r} holds {len(infinite)} infinite value(s), at rows {rows}. "
                "Fix: correct or blank those values (blank rows are left out of training)."
            )
        loss = loss or "l1"
        if loss not in _LOSSES:
            raise ConfigError(f"loss={loss!r} is not available for regress; use {', '.join(_LOSSES)}.")
        mean, std = float(values.mean()), float(values.std(ddof=0) or 1.0)
        return TaskState("regress", column, [], None, False, loss, {"mean": mean, "std": std})

    @property
    def num_outputs(self) -> int:
        return 1

    def targets(self, manifest: Manifest) -> np.ndarray:
        values = pd.to_numeric(manifest.frame[self.state.target], errors="coerce").to_numpy(np.float32)
        return (values - self.state.extra["mean"]) / self.state.extra["std"]

    def class_weights(self, targets: np.ndarray) -> torch.Tensor | None:
        return None

    def loss(self, outputs: torch.Tensor, targets: torch.Tensor, weights: torch.Tensor | None = None) -> torch.Tensor:
        return _LOSSES[self.state.loss](outputs[:, 0], targets.float())

    def scores(self, outputs: torch.Tensor) -> np.ndarray:
        """Values in the target's units, ``(B,)``."""
        z = outputs.detach().float()[:, 0].cpu().numpy()
        return z * self.state.extra["std"] + self.state.extra["mean"]

    def predict(self, outputs: torch.Tensor, **kwargs: Any) -> list[ValuePrediction]:
        return [ValuePrediction(float(v)) for v in self.scores(outputs)]

    def monitor_score(self, scores: np.ndarray, targets: np.ndarray) -> float:
        """Negative validation MAE (in target units; higher is better)."""
        truth = targets * self.state.extra["std"] + self.state.extra["mean"]
        return -float(np.mean(np.abs(scores - truth)))

    def prediction_frame(self, scores: np.ndarray) -> pd.DataFrame:
        return pd.DataFrame({"prediction": scores})

    def ensemble_outputs(self, outputs: list[torch.Tensor], members: list[TaskState] | None = None) -> torch.Tensor:
        """The members' mean value, each member's output read with its own target mean/std (its train split)."""
        from osteon.tasks._ensemble import mean_value

        mean, std = self.state.extra["mean"], self.state.extra["std"]
        if members is not None:
            pairs = zip(outputs, members, strict=True)
            outputs = [(o.float() * m.extra["std"] + m.extra["mean"] - mean) / std for o, m in pairs]
        return mean_value(outputs)

    def choose_operating_point(self, frame: pd.DataFrame) -> dict[str, Any] | None:
        return None

    def evaluate(
        self, frame: pd.DataFrame, *, operating_point: dict[str, Any] | None, n_resamples: int, seed: int
    ) -> dict[str, Any]:
        groups = patient_groups(frame)
        return metrics.regression_report(
            frame["truth"].to_numpy(float),
            frame["prediction"].to_numpy(float),
            groups=groups,
            n_resamples=n_resamples,
            seed=seed,
        )
