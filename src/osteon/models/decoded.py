"""Models whose forward is a tensor network followed by a decoding step (a detector's top-cell search and NMS).

ONNX export covers the network (one tensor out); the decoding runs in PyTorch after ONNX Runtime, so the
exported model's boxes are decoded exactly as the PyTorch model's (``engine/export_onnx.py``, ``Predictor``).
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

import torch
from torch import nn


@runtime_checkable
class DecodedModel(Protocol):
    """``forward(images) == decode(network(images), images)``; ``network`` returns one tensor."""

    def network(self, images: torch.Tensor) -> torch.Tensor: ...

    def decode(self, raw: torch.Tensor, images: torch.Tensor) -> Any: ...


class NetworkOf(nn.Module):
    """The tensor part of a :class:`DecodedModel` as a module (what ``torch.onnx`` exports)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.model.network(images)  # type: ignore[operator,no-any-return]


class Decoded(nn.Module):
    """A tensor network (e.g. an ONNX Runtime session) followed by the decoding of ``model``."""

    def __init__(self, network: nn.Module, model: nn.Module) -> None:
        super().__init__()
        self.net = network
        self.decoder = model

    def forward(self, images: torch.Tensor, covariates: torch.Tensor | None = None) -> Any:
        return self.decoder.decode(self.net(images), images)  # type: ignore[operator]
