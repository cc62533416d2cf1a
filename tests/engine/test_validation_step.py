"""The validation during training (engine/module.py) predicts each image once, without test-time flips."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import torch

from osteon.engine.module import TaskModule
from osteon.models.centernet import CenterNet


class _Recorder:
    """A task whose validation records are the batch sizes the model's encoder saw."""

    def validation_records(self, model: torch.nn.Module, batch: dict[str, Any]) -> list[Any]:
        model(batch["image"])
        return []


def test_validation_during_training_skips_the_flip_test_and_prediction_keeps_it() -> None:
    model = CenterNet("resnet10t", 1, width=16, flip_test=True).eval()
    seen: list[int] = []
    model.encoder.register_forward_hook(lambda module, args, out: seen.append(args[0].shape[0]))
    cfg = SimpleNamespace(class_weighting="none", channels_last=False)
    module = TaskModule(_Recorder(), model, cfg)  # type: ignore[arg-type]
    images = torch.zeros(2, 1, 64, 64)
    with torch.no_grad():
        module.validation_step({"image": images}, 0)
        module(images)
    assert seen == [2, 4]  # one pass while validating; the mirror images too when predicting
    assert model.flip_test
