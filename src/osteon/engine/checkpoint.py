"""Self-describing model files: weights plus everything needed to predict without the training set-up."""

from __future__ import annotations

import platform
from pathlib import Path
from typing import Any

import torch

import osteon

FORMAT_VERSION = 1


def library_versions() -> dict[str, str]:
    import lightning
    import timm
    import torchvision

    return {
        "osteon": osteon.__version__,
        "torch": str(torch.__version__),
        "torchvision": str(torchvision.__version__),
        "timm": timm.__version__,
        "lightning": lightning.__version__,
        "python": platform.python_version(),
    }


def save_model_file(path: Path, *, state_dict: dict[str, torch.Tensor], meta: dict[str, Any]) -> None:
    """Write ``{"format_version", "state_dict", "meta"}``; meta holds config, task state, preprocessing ..."""
    payload = {
        "format_version": FORMAT_VERSION,
        "state_dict": state_dict,
        "meta": {**meta, "versions": library_versions()},
    }
    tmp = path.with_suffix(".tmp")
    torch.save(payload, tmp)
    tmp.replace(path)


def load_model_file(path: Path) -> dict[str, Any]:
    """Read a model file safely (``weights_only``: no pickled code is executed)."""
    payload = torch.load(path, map_location="cpu", weights_only=True)
    if payload.get("format_version") != FORMAT_VERSION:
        raise ValueError(f"{path}: model file format {payload.get('format_version')} is not {FORMAT_VERSION}.")
    return payload
