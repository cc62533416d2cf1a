"""The Task protocol, the defaults of its optional hooks, and what a trained task remembers (TaskState).

Typed predictions live in :mod:`osteon.tasks.predictions` (re-exported here).

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
from osteon.tasks.predictions import (
    BoxPrediction,
    ClassPrediction,
    GradePrediction,
    MaskPrediction,
    Prediction,
    ValuePrediction,
)

if TYPE_CHECKING:
    from torch.utils.data import Dataset

    from osteon.data.datasets import DecodedImages
    from osteon.data.transforms import Preprocessing

__all__ = [
    "TASKS",
    "BoxPrediction",
    "ClassPrediction",
    "GradePrediction",
    "MaskPrediction",
    "Monitor",
    "OutputWriter",
    "Prediction",
    "Task",
    "TaskBase",
    "TaskState",
    "ValuePrediction",
    "build_task",
]


@dataclass(frozen=True)
class Monitor:
    """The validation metric a task is selected on: its display name and whether higher is better.

    The engine logs ``val/score`` as a higher-is-better number (``value`` for ``"max"``, ``-value`` for ``"min"``)
    so one checkpoint rule fits every task; reports and progress bars show ``name`` and the natural value.
    """

    name: str
    direction: str = "max"  # "max" | "min"

    def natural(self, score: float) -> float:
        """The metric's own value from the higher-is-better ``val/score``."""
        return score if self.direction == "max" else -score


class OutputWriter(Protocol):
    """Where a task hands outputs that are not table cells (masks); the engine decides names and folders."""

    def save_mask(self, kind: str, stem: str, mask: np.ndarray) -> str:
        """Save a ``(H, W)`` class map or ``(K, H, W)`` multi-label stack; ``kind`` is e.g. ``"masks"``/``"truth"``.

        Returns the saved path(s) as written into the predictions table (``|``-joined for several files).
        """
        ...


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
    """What a task plug-in provides to the engine (one instance per run). Every hook is declared here;
    :class:`TaskBase` gives the optional ones a no-op default, so the engine never probes with ``getattr``.

    Capabilities (class attributes) tell the engine and the report what differs between tasks, so that
    neither compares task names: ``monitor`` (the validation metric and its direction),
    ``stratify_by_target`` (splits are stratified by the target and train must hold every class),
    ``numeric_truth`` (the ``truth`` column is a number), ``setup_on_train`` (statistics of the target, e.g.
    a regression's mean/std, come from the train split only).

    Set-up: ``setup(manifest, *, target, positive_class, loss) -> TaskState`` (classmethod) reads what the task
    needs from the data; ``configure(state, cfg)`` copies task options (encoder, patch size) into the state and
    checks them; ``plan(state, manifest, cfg)`` derives choices from the training data (detect: anchors; kept in
    ``state.extra["plan"]``, which the engine writes to ``plan.json``); ``Task(state)`` rebuilds the task.

    Training: ``trainer_backend`` (``"lightning"`` or an engine backend such as ``"yolo"``), ``build_model``,
    ``missing_targets``, ``make_dataset`` (+ ``collate_fn``), ``class_weights``, ``training_loss``,
    ``validation_records`` → ``monitor_records``.

    Results: ``predict`` (model outputs → typed predictions), ``predict_image`` (one file → a typed prediction in
    original pixels), ``predict_rows`` (a predictions table; file outputs go to an :class:`OutputWriter`),
    ``calibrate`` (post-processing chosen on the validation predictions, e.g. detect's box scale: a new state that
    the engine saves before it writes the model), ``choose_operating_point`` (on validation predictions),
    ``evaluate`` (metrics with CIs from a table).
    """

    name: ClassVar[str]
    monitor: ClassVar[Monitor]
    stratify_by_target: ClassVar[bool]
    numeric_truth: ClassVar[bool]
    setup_on_train: ClassVar[bool]
    colour_input: ClassVar[bool]
    volume_input: ClassVar[bool]
    prediction_type: ClassVar[type | None]
    state: TaskState
    collate_fn: Callable[[list[Any]], Any] | None

    @classmethod
    def setup(
        cls, manifest: Manifest, *, target: str | None, positive_class: str | None, loss: str | None
    ) -> TaskState: ...

    @classmethod
    def configure(cls, state: TaskState, cfg: Any) -> TaskState: ...

    @classmethod
    def plan(cls, state: TaskState, manifest: Manifest, cfg: Any) -> TaskState: ...

    @classmethod
    def recipe_defaults(cls, cfg: Any) -> dict[str, Any]:
        """Config values of the task's default recipe (e.g. its learning rate); the engine applies those the user
        did not set, before the run is made, so ``config.yaml`` records them."""
        ...

    @property
    def num_outputs(self) -> int: ...

    @property
    def trainer_backend(self) -> str: ...

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
        """The validation score over all records, higher is better (``monitor.natural`` gives the metric)."""
        ...

    def predict(self, outputs: Any, **kwargs: Any) -> list[Prediction]:
        """Typed predictions of one batch of model outputs."""
        ...

    def predict_image(
        self, model: nn.Module, path: str | Path, *, prep: Preprocessing, covariates: torch.Tensor | None = None
    ) -> Prediction:
        """The typed prediction of one image file, in its original pixels."""
        ...

    def predict_rows(
        self,
        model: nn.Module,
        manifest: Manifest,
        dataset: Dataset,
        *,
        batch_size: int,
        outputs: OutputWriter | None = None,
    ) -> pd.DataFrame:
        """One row per dataset item: identifiers, ``truth`` when known, the task's prediction columns.

        Outputs that are not table cells (masks) go to ``outputs``, which returns the paths put in the table.
        """
        ...

    def calibrate(self, frame: pd.DataFrame) -> TaskState | None:
        """The task state with post-processing chosen on validation predictions (``frame``), or ``None`` to keep
        the state; the engine then saves the new state in the model and predicts validation again with it."""
        ...

    def choose_operating_point(self, frame: pd.DataFrame) -> dict[str, Any] | None:
        """Operating point chosen on validation predictions (binary tasks), else ``None``."""
        ...

    def evaluate(
        self, frame: pd.DataFrame, *, operating_point: dict[str, Any] | None, n_resamples: int, seed: int
    ) -> dict[str, Any]:
        """Metrics with CIs from a predictions table (``truth`` + the task's columns)."""
        ...

    def ensemble_outputs(self, outputs: list[Any], members: list[TaskState] | None = None) -> Any:
        """One output from the outputs of several models of this task on the same batch (an ensemble).

        The combined output is in this task's output space, such that its usual post-processing gives the mean of
        the members' probabilities (or values). ``members`` are the members' task states, in the order of
        ``outputs`` (e.g. a regression member's own target mean/std). Raises ``ConfigError`` where the task cannot
        be ensembled.
        """
        ...


class TaskBase:
    """No-op defaults of the optional hooks and capabilities; task classes derive from it (one level deep)."""

    name: ClassVar[str]
    monitor: ClassVar[Monitor] = Monitor("score")
    stratify_by_target: ClassVar[bool] = False
    numeric_truth: ClassVar[bool] = False
    setup_on_train: ClassVar[bool] = False
    #: The typed prediction the task returns (pipelines check stage compatibility with it; None: undeclared).
    prediction_type: ClassVar[type | None] = None
    colour_input: ClassVar[bool] = False  # the task's models can take RGB input (in_chans follows the data)
    volume_input: ClassVar[bool] = False  # inputs are volumes the task reads itself (Preprocessing.volume)
    collate_fn: Callable[[list[Any]], Any] | None = None

    def __init__(self, state: TaskState) -> None:
        self.state = state

    @classmethod
    def configure(cls, state: TaskState, cfg: Any) -> TaskState:
        """Copy task options from the config into the state (default: nothing to copy)."""
        return state

    @classmethod
    def plan(cls, state: TaskState, manifest: Manifest, cfg: Any) -> TaskState:
        """Choices derived from the training data (default: none)."""
        return state

    @classmethod
    def recipe_defaults(cls, cfg: Any) -> dict[str, Any]:
        """The task's own defaults for config fields the user did not set (default: none)."""
        return {}

    @property
    def trainer_backend(self) -> str:
        """The engine backend that trains this task (default: the Lightning loop)."""
        return "lightning"

    def class_weights(self, targets: np.ndarray) -> torch.Tensor | None:
        return None

    def calibrate(self, frame: pd.DataFrame) -> TaskState | None:
        return None

    def choose_operating_point(self, frame: pd.DataFrame) -> dict[str, Any] | None:
        return None

    def ensemble_outputs(self, outputs: list[Any], members: list[TaskState] | None = None) -> Any:
        """Default: the task's outputs cannot be averaged (e.g. boxes need fusion, not a mean)."""
        from osteon.errors import ConfigError

        raise ConfigError(
            f"task {self.name!r} cannot be ensembled yet: its model outputs cannot be averaged. "
            "Fix: evaluate the members one by one (or ensemble runs of classify, grade, regress or segment)."
        )


TASKS: Registry[type] = Registry("task")


def native_bf16_cpu() -> bool:
    """Whether training runs on a CPU with native bf16 arithmetic (AVX-512 BF16 or AMX) and no CUDA GPU.

    On such CPUs bf16 autocast roughly doubles convolution throughput (``benchmarks/engine_overhead.py``);
    elsewhere bf16 is emulated and slower than fp32.
    """
    if torch.cuda.is_available():
        return False
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                if line.startswith("flags"):
                    flags = set(line.split(":", 1)[1].split())
                    return bool(flags & {"avx512_bf16", "amx_bf16"})
    except OSError:
        return False
    return False


def build_task(state: TaskState) -> Task:
    """Instantiate the registered task class for ``state.name``."""
    return TASKS.get(state.name)(state)


def input_channels(state: TaskState) -> int:
    """Input channels of the model: 1 (grey) unless the run chose colour (``state.extra["in_chans"]``)."""
    return int(state.extra.get("in_chans", 1))


def make_model_for(task: Any, *, model: str, pretrained: str | None, covariate_dim: int, dropout: float) -> nn.Module:
    """Build the image model with the task's number of outputs (all current tasks share ImageModel)."""
    from osteon.models import create_model

    return create_model(
        model,
        task.num_outputs,
        in_chans=input_channels(task.state),
        covariate_dim=covariate_dim,
        pretrained=pretrained,
        dropout=dropout,
    )
