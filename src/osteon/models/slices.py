"""2.5D models over the slices of a series, and exam-level fusion of per-series scores (MRNet's recipe).

* :class:`SliceModel`: a registered 2D backbone applied to every slice of a series (in chunks, so memory grows
  with ``chunk`` not with the slice count), its slice features pooled by ``max`` (MRNet), ``mean`` or gated
  ``attention`` (Ilse et al. 2018, attention-based MIL; the weights say which slices carried the decision), then
  a linear head. Input ``(B, S, C, H, W)`` (or ``(B, S, H, W)`` grey) with an optional ``present`` ``(B, S)`` mask
  for series of different lengths.
* :class:`ExamFusion`: logistic regression (scikit-learn) over one score per series (e.g. sagittal, coronal,
  axial), fitted on validation scores, as MRNet combined its per-plane CNNs; missing series are imputed with the
  training mean (an exam with no score at all gets the prior). Saved as plain numbers (``to_dict``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from osteon.errors import ConfigError

POOLINGS = ("max", "mean", "attention")


class SliceModel(nn.Module):
    """Slices of a series → ``(B, num_outputs)`` logits (see the module docstring).

    Attributes:
        last_weights: ``(B, S)`` slice weights of the last forward pass (attention; max: one-hot of the arg-max
            slice per feature, averaged; mean: uniform), for slice-level explanation.
    """

    def __init__(
        self,
        backbone: nn.Module,
        num_outputs: int,
        *,
        pooling: str = "attention",
        hidden: int = 64,
        chunk: int = 32,
    ) -> None:
        super().__init__()
        if pooling not in POOLINGS:
            raise ConfigError(f"pooling={pooling!r} is not one of {', '.join(POOLINGS)}.")
        self.backbone = backbone
        self.num_features = int(getattr(backbone, "head_hidden_size", None) or backbone.num_features)  # type: ignore[arg-type]
        self.pooling = pooling
        self.chunk = chunk
        if pooling == "attention":
            self.attend_v = nn.Linear(self.num_features, hidden)
            self.attend_u = nn.Linear(self.num_features, hidden)
            self.attend_w = nn.Linear(hidden, 1)
        self.fc = nn.Linear(self.num_features, num_outputs)
        self.last_weights: torch.Tensor | None = None
        #: When True (and gradients are on), ``forward`` keeps the backbone's feature maps, chunks of
        #: ``(B*S, C, h, w)`` still in the graph, in ``feature_maps``, for slice CAMs (:mod:`osteon.explain.volumes`).
        self.capture_maps = False
        self.feature_maps: list[torch.Tensor] = []

    def slice_features(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, S, F)`` features of every slice of ``x`` ``(B, S, C, H, W)``."""
        b, s = x.shape[:2]
        flat = x.reshape(b * s, *x.shape[2:])
        parts = []
        self.feature_maps = []
        for start in range(0, len(flat), self.chunk):
            features = self.backbone.forward_features(flat[start : start + self.chunk])  # type: ignore[operator]
            if self.capture_maps and features.requires_grad:
                self.feature_maps.append(features)
            parts.append(self.backbone.forward_head(features, pre_logits=True))  # type: ignore[operator]
        return torch.cat(parts).reshape(b, s, -1)

    def forward(self, x: torch.Tensor, present: torch.Tensor | None = None) -> torch.Tensor:
        if x.ndim == 4:
            x = x[:, :, None]
        features = self.slice_features(x)
        mask = present if present is not None else torch.ones(features.shape[:2], dtype=torch.bool, device=x.device)
        if self.pooling == "attention":
            scores = self.attend_w(torch.tanh(self.attend_v(features)) * torch.sigmoid(self.attend_u(features)))[..., 0]
            weights = torch.softmax(scores.masked_fill(~mask, float("-inf")), dim=1)
            pooled = (weights[..., None] * features).sum(1)
        elif self.pooling == "max":
            filled = features.masked_fill(~mask[..., None], float("-inf"))
            pooled = filled.amax(1)
            weights = (filled == pooled[:, None]).float().mean(-1)
        else:
            weights = mask.float() / mask.float().sum(1, keepdim=True).clamp_min(1)
            pooled = (weights[..., None] * features).sum(1)
        self.last_weights = weights.detach()
        return self.fc(pooled)


def create_slice_model(
    name: str, num_outputs: int, *, in_chans: int = 1, pooling: str = "attention", pretrained: str | None = None
) -> SliceModel:
    """A :class:`SliceModel` on a registered backbone (``tiny_cnn``, ``resnet18``, ``timm:<name>`` ...)."""
    from osteon.models.network import create_backbone
    from osteon.models.registry import get_model_entry

    return SliceModel(
        create_backbone(get_model_entry(name), in_chans=in_chans, pretrained=pretrained), num_outputs, pooling=pooling
    )


@dataclass
class ExamFusion:
    """Logistic regression over per-series scores (one column per series name).

    Attributes:
        series: Series names, in column order.
        coef: ``(S,)`` weights; ``intercept``: bias; ``means``: ``(S,)`` training means (imputation).
    """

    series: list[str]
    coef: np.ndarray = field(default_factory=lambda: np.zeros(0))
    intercept: float = 0.0
    means: np.ndarray = field(default_factory=lambda: np.zeros(0))
    logit_inputs: bool = True

    def _design(self, scores: np.ndarray) -> np.ndarray:
        x = np.asarray(scores, dtype=np.float64)
        if x.ndim != 2 or x.shape[1] != len(self.series):
            raise ConfigError(f"scores must be (N, {len(self.series)}) for series {self.series}; got {x.shape}.")
        if self.logit_inputs:  # probabilities → log-odds, so the weights combine evidence additively
            x = np.log(np.clip(x, 1e-6, 1 - 1e-6) / (1 - np.clip(x, 1e-6, 1 - 1e-6)))
        return x

    def fit(self, scores: np.ndarray, y: Sequence[int], *, c: float = 1.0) -> ExamFusion:
        """Fit on ``(N, S)`` per-series probabilities (``nan`` = series missing) and exam labels ``(N,)``."""
        from sklearn.linear_model import LogisticRegression

        x = self._design(scores)
        self.means = np.nanmean(x, axis=0)
        x = np.where(np.isnan(x), self.means, x)
        model = LogisticRegression(C=c).fit(x, np.asarray(y, dtype=int))
        self.coef, self.intercept = model.coef_[0].astype(np.float64), float(model.intercept_[0])
        return self

    def predict_proba(self, scores: np.ndarray) -> np.ndarray:
        """``(N,)`` exam probabilities: ``sigmoid(coef · x + intercept)`` with missing series imputed."""
        x = self._design(scores)
        x = np.where(np.isnan(x), self.means, x)
        return 1.0 / (1.0 + np.exp(-(x @ self.coef + self.intercept)))

    def to_dict(self) -> dict[str, Any]:
        return {
            "series": list(self.series),
            "coef": self.coef.tolist(),
            "intercept": self.intercept,
            "means": self.means.tolist(),
            "logit_inputs": self.logit_inputs,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ExamFusion:
        return cls(
            list(data["series"]),
            np.asarray(data["coef"], dtype=np.float64),
            float(data["intercept"]),
            np.asarray(data["means"], dtype=np.float64),
            bool(data.get("logit_inputs", True)),
        )
