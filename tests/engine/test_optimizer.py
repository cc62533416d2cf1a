"""The optimiser: AdamW runs its fused kernel on CPU parameters (one pass over every tensor), SGD stays as it was."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from osteon.engine import train

TINY = {"task": "classify", "target": "fractured", "model": "tiny_cnn", "image_size": 32, "batch_size": 16}


@pytest.mark.parametrize(("optimizer", "fused"), [("adamw", True), ("sgd", None)])
def test_adamw_is_fused_on_cpu(phantom_dataset: Path, tmp_path: Path, optimizer: str, fused: bool | None) -> None:
    run = train(data=str(phantom_dataset), out=str(tmp_path / optimizer), optimizer=optimizer, epochs=1, threads=1,
                progress=False, **TINY)  # fmt: skip
    state = torch.load(run.last_checkpoint, map_location="cpu", weights_only=False)["optimizer_states"][0]
    assert state["param_groups"][0].get("fused") is fused
    assert state["state"]  # it stepped: moments (AdamW) or momentum buffers (SGD) exist
