"""The Task protocol and the typed predictions tasks return.

The engine knows batches and losses; everything task-specific (targets from the Manifest, the
loss, post-processing, metrics) lives in a small Task object (DESIGN.md §2).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

import numpy as np
import pandas as pd
import torch
from torch import nn

from osteon.data.manifest import Manifest
from osteon.registry import Registry

if TYPE_CHECKING:
    from torch.utils.data import Dataset

    from osteon.data.datasets import DecodedImages
    from osteon.data.transforms import Preprocessing


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
    """What a task plug-in provides to the engine (one instance per run).

    Set-up: ``setup(manifest, *, target, positive_class, loss) -> TaskState`` (classmethod) reads
    what the task needs from the data (class names, target statistics); ``Task(state)`` rebuilds the
    task from that state, which the checkpoint stores.

    Training (engine hooks): ``build_model``, ``missing_targets``, ``make_dataset`` (+ ``collate_fn``),
    ``training_loss``, ``validation_records`` → ``monitor_records`` (one higher-is-better number that
    checkpointing and early stopping follow).

    Results: ``predict_rows`` (a predictions table), ``choose_operating_point`` (on validation
    predictions), ``evaluate`` (metrics with CIs from a predictions table).

    Optional hooks, looked up with ``getattr`` by the engine: ``configure(state, cfg)`` (copy task
    settings such as the encoder into the state), ``plan(state, manifest, cfg, run_path)`` (choices
    derived from the data, e.g. detection anchors), ``fit_run(run_path, cfg, *, resume, progress)``
    (a backend with its own trainer, e.g. Ultralytics; returns True when it trained) and
    ``predict_image(model, path, *, prep)`` (typed prediction in original pixels).
    """

    name: ClassVar[str]
    state: TaskState
    collate_fn: Callable[[list[Any]], Any] | None

    @property
    def num_outputs(self) -> int: ...

    def build_model(self, *, model: str, pretrained: str | None, covariate_dim: int, dropout: float) -> nn.Module: ...

    def missing_targets(self, manifest: Manifest) -> np.ndarray:
        """Boolean per Manifest row: the row has no usable target."""
        ...

    def make_dataset(
        self,
        manifest: Manifest,
        rows: np.ndarray,
        decoded: DecodedImages,
        *,
        covariates: np.ndarray | None,
        augment: Callable[[torch.Tensor], torch.Tensor] | None,
        prep: Preprocessing,
    ) -> Dataset:
        """A torch Dataset of ``rows``; ``decoded`` holds their images in the same order. Items carry ``index``."""
        ...

    def class_weights(self, targets: np.ndarray) -> torch.Tensor | None:
        """Inverse-frequency weights for the loss/sampler (``None`` when the task has no classes)."""
        ...

    def training_loss(self, model: nn.Module, batch: Any, class_weights: torch.Tensor | None) -> torch.Tensor: ...

    def validation_records(self, model: nn.Module, batch: Any) -> list[Any]:
        """Picklable per-image records of one validation batch."""
        ...

    def monitor_records(self, records: list[Any]) -> float:
        """The validation score over all records (higher is better)."""
        ...

    def predict_rows(
        self, model: nn.Module, manifest: Manifest, dataset: Dataset, *, batch_size: int, out_dir: Path | None = None
    ) -> pd.DataFrame:
        """One row per dataset item: identifiers, ``truth`` when known, the task's prediction columns.

        Tasks whose outputs are not table cells (masks) write them under ``out_dir`` and put paths in the table.
        """
        ...

    def choose_operating_point(self, frame: pd.DataFrame) -> dict[str, Any] | None:
        """Operating point chosen on validation predictions (binary tasks), else ``None``."""
        ...

    def evaluate(
        self, frame: pd.DataFrame, *, operating_point: dict[str, Any] | None, n_resamples: int, seed: int
    ) -> dict[str, Any]:
        """Metrics with CIs from a predictions table (``truth`` + the task's columns)."""
        ...


TASKS: Registry[type] = Registry("task")


def build_task(state: TaskState) -> Task:
    """Instantiate the registered task class for ``state.name``."""
    return TASKS.get(state.name)(state)


def make_model_for(task: Any, *, model: str, pretrained: str | None, covariate_dim: int, dropout: float) -> nn.Module:
    """Build the image model with the task's number of outputs (all current tasks share ImageModel)."""
    from osteon.models import create_model

    return create_model(
        model, task.num_outputs, in_chans=1, covariate_dim=covariate_dim, pretrained=pretrained, dropout=dropout
    )
