"""The segment task's default recipe: what `osteon train --task segment` uses when no flag sets it."""

from __future__ import annotations

import pytest

from osteon.engine.config import TrainConfig
from osteon.engine.fit import with_recipe_defaults
from osteon.tasks import TaskState
from osteon.tasks import segment as segment_module
from osteon.tasks.segment import DEFAULT_ARCHITECTURE, DEFAULT_BATCH_SIZE, SegmentationTask


def _state() -> TaskState:
    extra = {"source": "mask", "mask_values": [0, 1]}
    return TaskState("segment", "mask", ["background", "1"], None, False, "dice_ce", extra)


def test_unset_model_and_batch_size_take_the_segment_defaults() -> None:
    cfg = with_recipe_defaults(TrainConfig(task="segment", data="x.csv", image_size=64))  # no --model/--batch-size
    assert cfg.model == DEFAULT_ARCHITECTURE == "unet" and cfg.batch_size == DEFAULT_BATCH_SIZE
    task = SegmentationTask(SegmentationTask.configure(_state(), cfg))
    net = task.build_model(model=cfg.model, pretrained=None, covariate_dim=0, dropout=0.0)
    assert type(net.net).__name__ == "Unet"


def test_flags_win_over_the_defaults() -> None:
    given = TrainConfig(task="segment", data="x.csv", image_size=64, model="fpn", batch_size=3, precision="32")
    cfg = with_recipe_defaults(given)
    assert (cfg.model, cfg.batch_size, cfg.precision) == ("fpn", 3, "32")
    net = SegmentationTask(SegmentationTask.configure(_state(), cfg)).build_model(
        model=cfg.model, pretrained=None, covariate_dim=0, dropout=0.0
    )
    assert type(net.net).__name__ == "FPN"


@pytest.mark.parametrize(("native", "expected"), [(True, "bf16-mixed"), (False, "auto")])
def test_precision_defaults_to_bf16_on_cpus_with_native_bf16(
    monkeypatch: pytest.MonkeyPatch, native: bool, expected: str
) -> None:
    monkeypatch.setattr(segment_module, "native_bf16_cpu", lambda: native)
    assert with_recipe_defaults(TrainConfig(task="segment", data="x.csv")).precision == expected
