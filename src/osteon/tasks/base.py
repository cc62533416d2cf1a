"""The Task protocol and the typed predictions tasks return.

The engine knows batches and losses; everything task-specific (targets from the Manifest, the
loss, post-processing, metrics) lives in a small Task object (DESIGN.md §2).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol

import numpy as np
import pandas as pd
import torch
from torch import nn

from osteon.data.manifest import Manifest
from osteon.registry import Registry


@dataclass(frozen=True)
class ClassPrediction:
    """Classification of one image: probabilities over ``class_names`` (multilabel: independent)."""

    probabilities: np.ndarray
    class_names: tuple[str, ...]
    label: str
    multilabel: bool = False


@dataclass(frozen=True)
class GradePrediction:
    """Ordinal grade of one image: the most probable grade, the probabilities and the expected grade."""

    probabilities: np.ndarray
    class_names: tuple[str, ...]
    grade: str
    expected_grade: float


@dataclass(frozen=True)
class ValuePrediction:
    """A predicted number (bone age, angle, joint-space width)."""

    value: float


Prediction = ClassPrediction | GradePrediction | ValuePrediction


@dataclass
class TaskState:
    """What a trained task must remember: saved in the checkpoint, enough to rebuild the task."""

    name: str
    target: str
    class_names: list[str] = field(default_factory=list)
    positive_class: str | None = None
    multilabel: bool = False
    loss: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


class Task(Protocol):
    """What a task plug-in provides to the engine. One instance per run."""

    name: ClassVar[str]
    state: TaskState

    @property
    def num_outputs(self) -> int: ...

    def targets(self, manifest: Manifest) -> np.ndarray:
        """Encoded training target per Manifest row (classes → ints, grades → ints, values → floats)."""
        ...

    def loss(self, outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor: ...

    def class_weights(self, targets: np.ndarray) -> torch.Tensor | None:
        """Inverse-frequency weights for the loss (``None`` when the task has no classes)."""
        ...

    def scores(self, outputs: torch.Tensor) -> np.ndarray:
        """Post-processed outputs as an array: probabilities ``(B, C)`` or values ``(B,)``."""
        ...

    def predict(self, outputs: torch.Tensor) -> list[Prediction]: ...

    def monitor_score(self, scores: np.ndarray, targets: np.ndarray) -> float:
        """One higher-is-better number on the validation split (early stopping, best epoch)."""
        ...

    def prediction_frame(self, scores: np.ndarray) -> pd.DataFrame:
        """Columns written to ``predictions.csv`` for these scores (probabilities, predicted label ...)."""
        ...

    def evaluate(
        self,
        frame: pd.DataFrame,
        *,
        operating_point: dict[str, Any] | None,
        n_resamples: int,
        seed: int,
    ) -> dict[str, Any]:
        """Metrics with CIs from a predictions frame (``truth`` column + ``prediction_frame`` columns)."""
        ...

    def choose_operating_point(self, frame: pd.DataFrame) -> dict[str, Any] | None:
        """Operating point chosen on the validation predictions (binary tasks), else ``None``."""
        ...


TASKS: Registry[type] = Registry("task")


def build_task(state: TaskState) -> Task:
    """Instantiate the registered task class for ``state.name``."""
    return TASKS.get(state.name)(state)


def make_model_for(task: Task, *, model: str, pretrained: str | None, covariate_dim: int, dropout: float) -> nn.Module:
    """Build the image model with the task's number of outputs (all current tasks share ImageModel)."""
    from osteon.models import create_model

    return create_model(
        model, task.num_outputs, in_chans=1, covariate_dim=covariate_dim, pretrained=pretrained, dropout=dropout
    )
