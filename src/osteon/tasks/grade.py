"""``grade``: ordinal grades (Kellgren–Lawrence 0–4, OARSI, Pfirrmann) with an ordinal-aware loss."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import pandas as pd
import torch
from torch import nn

from osteon import metrics
from osteon.data.manifest import Manifest
from osteon.errors import ConfigError
from osteon.models.heads import corn_loss, corn_probabilities
from osteon.tasks._image import ImageLevelTask
from osteon.tasks._targets import as_label_strings, patient_groups, sorted_classes, target_column
from osteon.tasks.base import TASKS, GradePrediction, Monitor, TaskState


@TASKS.register("grade")
class GradingTask(ImageLevelTask):
    """Ordinal classification. ``loss="corn"`` (default) is rank-consistent; ``"ce"`` ignores order.

    Grades are the Manifest column's values in numeric order; predictions give the most probable
    grade, the probabilities and the expected grade (probability-weighted mean of grade indices).
    """

    name: ClassVar[str] = "grade"
    prediction_type: ClassVar[type | None] = GradePrediction
    monitor: ClassVar[Monitor] = Monitor("QWK", "max")
    stratify_by_target: ClassVar[bool] = True

    @classmethod
    def setup(
        cls, manifest: Manifest, *, target: str | None, positive_class: str | None, loss: str | None
    ) -> TaskState:
        column = target_column(manifest, target, "label")
        names = sorted_classes(as_label_strings(manifest.frame[column]))
        if len(names) < 3:
            raise ConfigError(
                f"{manifest.name}: column {column!r} has {len(names)} grades {names}; "
                "grading needs ≥ 3 ordered grades. "
                "Fix: use --task classify for two classes."
            )
        if not all(n.lstrip("-").isdigit() for n in names):
            raise ConfigError(
                f"{manifest.name}: grades in {column!r} must be integers to have an order, got {names}. "
                "Fix: map them to 0..K-1 in the Manifest."
            )
        loss = loss or "corn"
        if loss not in ("corn", "ce"):
            raise ConfigError(f"loss={loss!r} is not available for grade; use corn or ce.")
        return TaskState("grade", column, names, None, False, loss)

    @property
    def class_names(self) -> list[str]:
        return self.state.class_names

    @property
    def num_outputs(self) -> int:
        k = len(self.class_names)
        return k - 1 if self.state.loss == "corn" else k

    def targets(self, manifest: Manifest) -> np.ndarray:
        labels = as_label_strings(manifest.frame[self.state.target])
        index = {n: i for i, n in enumerate(self.class_names)}
        out = []
        for row, value in enumerate(labels):
            if pd.isna(value):
                out.append(-1)
            elif value not in index:
                raise ConfigError(
                    f"{manifest.name}: row {row} ({manifest.frame.at[row, 'image']}) has grade {value!r}; "
                    f"the model knows grades {self.class_names}."
                )
            else:
                out.append(index[value])
        return np.array(out, dtype=np.int64)

    def class_weights(self, targets: np.ndarray) -> torch.Tensor | None:
        counts = np.bincount(targets[targets >= 0], minlength=len(self.class_names)).astype(np.float64)
        return torch.tensor(counts.sum() / np.maximum(counts, 1) / len(counts), dtype=torch.float32)

    def loss(self, outputs: torch.Tensor, targets: torch.Tensor, weights: torch.Tensor | None = None) -> torch.Tensor:
        if self.state.loss == "corn":
            return corn_loss(outputs, targets.long())
        return nn.functional.cross_entropy(outputs, targets.long(), weight=weights)

    def scores(self, outputs: torch.Tensor) -> np.ndarray:
        outputs = outputs.detach().float()
        probs = corn_probabilities(outputs) if self.state.loss == "corn" else torch.softmax(outputs, dim=1)
        return probs.cpu().numpy()

    def predict(self, outputs: torch.Tensor, **kwargs: Any) -> list[GradePrediction]:
        return self.predict_from_scores(self.scores(outputs))

    def predict_from_scores(self, scores: np.ndarray) -> list[GradePrediction]:
        names = tuple(self.class_names)
        expected = scores @ np.arange(len(names))
        return [
            GradePrediction(p, names, names[int(np.argmax(p))], float(e)) for p, e in zip(scores, expected, strict=True)
        ]

    def monitor_score(self, scores: np.ndarray, targets: np.ndarray) -> float:
        """Validation quadratic weighted kappa."""
        return float(metrics.quadratic_weighted_kappa_score(targets, np.argmax(scores, axis=1)))

    def prediction_frame(self, scores: np.ndarray) -> pd.DataFrame:
        frame = pd.DataFrame({f"prob_{n}": scores[:, i] for i, n in enumerate(self.class_names)})
        preds = self.predict_from_scores(scores)
        frame["prediction"] = [p.grade for p in preds]
        frame["expected_grade"] = [p.expected_grade for p in preds]
        return frame

    def ensemble_outputs(self, outputs: list[torch.Tensor], members: list[TaskState] | None = None) -> torch.Tensor:
        """Outputs whose grade probabilities (softmax or CORN) are the members' mean probabilities."""
        from osteon.tasks._ensemble import mean_corn, mean_softmax

        return mean_corn(outputs) if self.state.loss == "corn" else mean_softmax(outputs)

    def choose_operating_point(self, frame: pd.DataFrame) -> dict[str, Any] | None:
        return None

    def evaluate(
        self, frame: pd.DataFrame, *, operating_point: dict[str, Any] | None, n_resamples: int, seed: int
    ) -> dict[str, Any]:
        groups = patient_groups(frame)
        y = frame["truth"].map({n: i for i, n in enumerate(self.class_names)}).to_numpy(int)
        proba = frame[[f"prob_{n}" for n in self.class_names]].to_numpy()
        return metrics.ordinal_report(
            y, proba, class_names=self.class_names, groups=groups, n_resamples=n_resamples, seed=seed
        )
