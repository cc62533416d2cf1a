"""What a class-activation map explains, per task: CAM adapters.

A CAM needs a module whose ``forward(image)`` returns the model's output, and *targets*: callables that
turn that output (for one image) into the scalar whose gradient the map follows. Both depend on the
task, so each task registers a :class:`CamAdapter` in :data:`CAM_ADAPTERS` under its name:

* ``classify``: one target per class, the class logit (multilabel: the label's logit).
* ``grade``: one target per grade; CORN models use the log-probability of the grade (their outputs are
  conditional logits, not one per grade), cross-entropy models the grade's logit.
* ``regress``: one target, the predicted value (its gradient points towards larger values).

Segmentation (a class's logits summed over its predicted region, pytorch-grad-cam's
``SemanticSegmentationTarget``) and detection (one target per predicted box, its
``FasterRCNNBoxScoreTarget``) plug in the same way: register an adapter under the task's name.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import torch
from torch import nn

from osteon.errors import ConfigError
from osteon.registry import Registry

ALL = "all"


@dataclass(frozen=True)
class CamTarget:
    """One thing to explain in one image.

    Attributes:
        name: Human-readable name: the class or grade, ``"value"``, ``"box 1: fracture"`` ...
        fn: ``fn(output_of_one_image) -> scalar tensor`` (pytorch-grad-cam's target contract).
        score: The model's score for it (class probability, predicted value, box score), when it has one.
        region: Optional ``(x1, y1, x2, y2)`` in input pixels the target refers to (a box).
    """

    name: str
    fn: Callable[[torch.Tensor], torch.Tensor]
    score: float | None = None
    region: tuple[float, float, float, float] | None = field(default=None)


class CamAdapter(Protocol):
    """How to explain one task's model (register an implementation in :data:`CAM_ADAPTERS`)."""

    def cam_model(self, model: nn.Module, covariates: torch.Tensor | None) -> nn.Module:
        """A module with ``forward(image) -> output`` (covariates, if any, bound in)."""
        ...

    def targets(self, task: Any, output: torch.Tensor, requested: Sequence[str] | None) -> list[CamTarget]:
        """Targets for ``requested`` names (``None``: the prediction; ``["all"]``: every class)."""
        ...

    def reshape_transform(self, model: nn.Module) -> Callable[[torch.Tensor], torch.Tensor] | None:
        """Turns the target layer's output into ``(B, C, h, w)``, or ``None`` when it already is."""
        ...

    def default_layer(self, model: nn.Module, x: torch.Tensor) -> str:
        """Dotted name (inside ``model``) of the layer to use when none is given; ``x`` is a model input."""
        ...


CAM_ADAPTERS: Registry[type] = Registry("CAM adapter")
#: Slice explanations of volume tasks by task name: ``fn(predictor, path, *, method, targets, layer, out_dir)``
#: returning Explanations (registered in :mod:`osteon.explain.volumes`).
VOLUME_EXPLAINERS: Registry[Any] = Registry("volume explainer")


def cam_adapter_for(task_name: str) -> CamAdapter:
    """The registered adapter of a task.

    Raises:
        ConfigError: no adapter is registered for the task.
    """
    if task_name not in CAM_ADAPTERS:
        raise ConfigError(
            f"Class-activation maps are not available for task {task_name!r} yet (available for: "
            f"{', '.join(CAM_ADAPTERS.names())}). Fix: register a CamAdapter in osteon.explain.targets."
        )
    return CAM_ADAPTERS.get(task_name)()


class _BoundCovariates(nn.Module):
    """``forward(image)`` of a model that also takes covariates (fixed for one image)."""

    def __init__(self, model: nn.Module, covariates: torch.Tensor | None) -> None:
        super().__init__()
        self.model = model
        self.covariates = covariates

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return self.model(image, self.covariates)


def _select(names: Sequence[str], requested: Sequence[str] | None, predicted: int, what: str) -> list[int]:
    """Indices of the requested class names (``None``: the predicted one; ``all``: every one)."""
    if not requested:
        return [predicted]
    if any(r.lower() == ALL for r in requested):
        return list(range(len(names)))
    out = []
    for name in requested:
        if name not in names:
            raise ConfigError(
                f"{what} {name!r} is not one of the model's {what}es {list(names)}. "
                f"Fix: pass one of them to --class, or --class {ALL}."
            )
        out.append(list(names).index(name))
    return out


class _ImageModelAdapter:
    """Shared parts of the image-level tasks: the model is an ``ImageModel`` taking ``(image, covariates)``."""

    def cam_model(self, model: nn.Module, covariates: torch.Tensor | None) -> nn.Module:
        return _BoundCovariates(model, covariates)

    def reshape_transform(self, model: nn.Module) -> Callable[[torch.Tensor], torch.Tensor] | None:
        return None

    def default_layer(self, model: nn.Module, x: torch.Tensor) -> str:
        layer = str(getattr(model, "feature_layer", "") or "")
        if not layer:
            raise ConfigError("The model names no feature layer for CAMs. Fix: pass --target-layer NAME.")
        return layer


class _Logit:
    def __init__(self, index: int) -> None:
        self.index = index

    def __call__(self, output: torch.Tensor) -> torch.Tensor:
        return output[..., self.index]


class _CornLogProbability:
    """log P(grade = k) from CORN conditional logits of one image ``(K-1,)``."""

    def __init__(self, index: int) -> None:
        self.index = index

    def __call__(self, output: torch.Tensor) -> torch.Tensor:
        from osteon.models.heads import corn_probabilities

        probs = corn_probabilities(output.reshape(1, -1))[0]
        return torch.log(probs[self.index].clamp_min(1e-12))


@CAM_ADAPTERS.register("classify")
class ClassificationCamAdapter(_ImageModelAdapter):
    """One target per class: the class logit."""

    def targets(self, task: Any, output: torch.Tensor, requested: Sequence[str] | None) -> list[CamTarget]:
        names = list(task.state.class_names)
        scores = task.scores(output.detach())[0]
        chosen = _select(names, requested, int(np.argmax(scores)), "class")
        return [CamTarget(names[i], _Logit(i), float(scores[i])) for i in chosen]


@CAM_ADAPTERS.register("grade")
class GradingCamAdapter(_ImageModelAdapter):
    """One target per grade: its log-probability (CORN) or its logit (cross-entropy)."""

    def targets(self, task: Any, output: torch.Tensor, requested: Sequence[str] | None) -> list[CamTarget]:
        names = list(task.state.class_names)
        scores = task.scores(output.detach())[0]
        chosen = _select(names, requested, int(np.argmax(scores)), "grade")
        make = _CornLogProbability if task.state.loss == "corn" else _Logit
        return [CamTarget(names[i], make(i), float(scores[i])) for i in chosen]


@CAM_ADAPTERS.register("regress")
class RegressionCamAdapter(_ImageModelAdapter):
    """One target: the predicted value (maps show what pushes it up)."""

    def targets(self, task: Any, output: torch.Tensor, requested: Sequence[str] | None) -> list[CamTarget]:
        if requested and any(r.lower() not in (ALL, "value") for r in requested):
            raise ConfigError(
                f"A regression model has one output; --class {list(requested)} does not apply. Fix: omit --class."
            )
        value = float(task.scores(output.detach())[0])
        return [CamTarget("value", _Logit(0), value)]
