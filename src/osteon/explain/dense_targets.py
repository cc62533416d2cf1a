"""CAM adapters for dense outputs: ``segment`` (per class region) and ``detect`` (per box).

* segment: the model returns logits ``(1, K, S, S)``; the target of a class is the sum of its logits over the
  region the model assigns to it (pytorch-grad-cam's ``SemanticSegmentationTarget``); the default layer is the
  network's bottleneck (its smallest feature map), since the encoder module itself returns a list.
* detect: the model returns ``[{"boxes", "scores", "labels"}]`` in input pixels; the target of a box is the
  summed score of the detections that overlap it (IoU ≥ 0.5) with the same label (pytorch-grad-cam's
  ``FasterRCNNBoxScoreTarget`` idea, written for any torchvision detector); default layer: the backbone's
  last block (``Detector.feature_layer``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from osteon.errors import ConfigError
from osteon.explain.targets import ALL, CAM_ADAPTERS, CamTarget, _BoundCovariates

#: Boxes explained by default (the highest-scoring ones).
DEFAULT_BOXES = 5
BOX_IOU = 0.5


def tensor_outputs(module: nn.Module, x: torch.Tensor) -> list[tuple[str, tuple[int, ...]]]:
    """``(name, shape)`` of every submodule whose output is a 4D tensor, in execution order, for input ``x``."""
    seen: list[tuple[str, tuple[int, ...]]] = []
    handles = []
    for name, sub in module.named_modules():
        if not name:
            continue

        def hook(_m: nn.Module, _i: Any, out: Any, name: str = name) -> None:
            if isinstance(out, torch.Tensor) and out.ndim == 4:
                seen.append((name, tuple(out.shape)))

        handles.append(sub.register_forward_hook(hook))
    try:
        with torch.no_grad():
            module(x)
    finally:
        for handle in handles:
            handle.remove()
    return seen


def bottleneck_layer(module: nn.Module, x: torch.Tensor, *, within: str = "") -> str:
    """The last-executed submodule (under ``within``) with the smallest 4D feature map: the most semantic layer.

    Raises:
        ConfigError: no submodule returns a 4D tensor.
    """
    found = [(n, s) for n, s in tensor_outputs(module, x) if not within or n == within or n.startswith(within + ".")]
    if not found:
        raise ConfigError("No layer of the model returns a feature map (B, C, h, w). Fix: pass --target-layer NAME.")
    smallest = min(s[-2] * s[-1] for _, s in found)
    return [n for n, s in found if s[-2] * s[-1] == smallest][-1]


class _RegionLogits:
    """Sum of one channel's logits over a fixed region ``(S, S)`` of the input."""

    def __init__(self, channel: int, region: np.ndarray) -> None:
        self.channel = channel
        self.region = torch.from_numpy(region.astype(np.float32))

    def __call__(self, output: torch.Tensor) -> torch.Tensor:
        return (output[self.channel] * self.region.to(output.device)).sum()


@CAM_ADAPTERS.register("segment")
class SegmentationCamAdapter:
    """One target per foreground class: its logits summed over its predicted region."""

    def cam_model(self, model: nn.Module, covariates: torch.Tensor | None) -> nn.Module:
        return _BoundCovariates(model, None)

    def reshape_transform(self, model: nn.Module) -> Callable[[torch.Tensor], torch.Tensor] | None:
        return None

    def default_layer(self, model: nn.Module, x: torch.Tensor) -> str:
        preferred = str(getattr(model, "feature_layer", "") or "")
        return bottleneck_layer(model, x, within=preferred if preferred not in ("", "net") else "")

    def targets(self, task: Any, output: torch.Tensor, requested: Sequence[str] | None) -> list[CamTarget]:
        names = list(task.class_names)
        logits = output.detach()[0].float()
        sigmoid = bool(getattr(task, "sigmoid", logits.shape[0] == len(names) - 1))
        if sigmoid:
            probs = torch.sigmoid(logits)
            regions = {c: (probs[c - 1] > 0.5).numpy() for c in range(1, len(names))}
            channel = {c: c - 1 for c in range(1, len(names))}
        else:
            probs = torch.softmax(logits, dim=0)
            decided = probs.argmax(dim=0).numpy()
            regions = {c: decided == c for c in range(1, len(names))}
            channel = {c: c for c in range(1, len(names))}
        if requested and any(r.lower() == ALL for r in requested):
            chosen = list(regions)
        elif requested:
            unknown = [r for r in requested if r not in names[1:]]
            if unknown:
                raise ConfigError(
                    f"class {unknown[0]!r} is not one of the model's foreground classes {names[1:]}. "
                    f"Fix: pass one of them to --class, or --class {ALL}."
                )
            chosen = [names.index(r) for r in requested]
        else:
            chosen = [c for c, region in regions.items() if region.any()] or [1]
        out = []
        for c in chosen:
            region = regions[c] if regions[c].any() else np.ones_like(regions[c])  # nothing predicted: whole image
            score = float(probs[channel[c]][torch.from_numpy(region)].mean())
            out.append(CamTarget(names[c], _RegionLogits(channel[c], region), score))
        return out


class _BoxScore:
    """Summed score of the detections overlapping ``box`` (IoU ≥ 0.5) with its label."""

    def __init__(self, box: torch.Tensor, label: int) -> None:
        self.box = box
        self.label = label

    def __call__(self, output: dict[str, torch.Tensor]) -> torch.Tensor:
        from torchvision.ops import box_iou

        boxes, scores, labels = output["boxes"], output["scores"], output["labels"]
        if len(boxes) == 0:
            return scores.sum() * 0.0
        iou = box_iou(self.box[None].to(boxes.device), boxes)[0]
        keep = (iou >= BOX_IOU) & (labels == self.label)
        return scores[keep].sum()


@CAM_ADAPTERS.register("detect")
class DetectionCamAdapter:
    """One target per detected box (the highest-scoring :data:`DEFAULT_BOXES`, or every box of the named classes)."""

    def cam_model(self, model: nn.Module, covariates: torch.Tensor | None) -> nn.Module:
        return _BoundCovariates(model, None)

    def reshape_transform(self, model: nn.Module) -> Callable[[torch.Tensor], torch.Tensor] | None:
        return None

    def default_layer(self, model: nn.Module, x: torch.Tensor) -> str:
        layer = str(getattr(model, "feature_layer", "") or "")
        if not layer:
            raise ConfigError("The detector names no feature layer. Fix: pass --target-layer NAME.")
        return layer

    def targets(self, task: Any, output: Any, requested: Sequence[str] | None) -> list[CamTarget]:
        names = list(task.class_names)
        detections = output[0]
        boxes = detections["boxes"].detach().float()
        scores = detections["scores"].detach().float()
        labels = detections["labels"].detach().long()
        order = [int(i) for i in torch.argsort(scores, descending=True)]
        if requested and not any(r.lower() == ALL for r in requested):
            unknown = [r for r in requested if r not in names]
            if unknown:
                raise ConfigError(f"class {unknown[0]!r} is not one of the detector's classes {names}.")
            order = [i for i in order if names[int(labels[i])] in requested]
        elif not requested:
            order = order[:DEFAULT_BOXES]
        out = []
        for rank, i in enumerate(order):
            name = names[int(labels[i])] if 0 <= int(labels[i]) < len(names) else str(int(labels[i]))
            x1, y1, x2, y2 = (float(v) for v in boxes[i])
            target = _BoxScore(boxes[i], int(labels[i]))
            out.append(CamTarget(f"box{rank + 1}_{name}", target, float(scores[i]), (x1, y1, x2, y2)))  # type: ignore[arg-type]
        return out
