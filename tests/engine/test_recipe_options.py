"""Weight averaging (``ema_decay``), time budgets (``time_budget_min``) and the tasks' recipe defaults."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import yaml

from osteon.engine import train
from osteon.engine.config import TrainConfig
from osteon.engine.fit import with_recipe_defaults


@pytest.mark.filterwarnings("ignore")
def test_validation_and_model_pt_use_the_averaged_weights(phantom_dataset: Path, tmp_path: Path) -> None:
    common = {"task": "classify", "data": str(phantom_dataset), "target": "fractured", "model": "tiny_cnn"}
    sizes = {"image_size": 32, "batch_size": 16}
    run = train(**common, **sizes, epochs=2, ema_decay=0.9, out=str(tmp_path / "r"), progress=False)
    last = torch.load(run.checkpoints / "last.ckpt", map_location="cpu", weights_only=False)
    averaged, current = last["state_dict"], last["current_model_state"]  # Lightning's WeightAveraging layout
    name = next(k for k in averaged if k.endswith("weight") and averaged[k].dtype.is_floating_point)
    assert not torch.equal(averaged[name], current[name])  # the average lags the optimiser's weights
    best = torch.load(run.checkpoints / "best.ckpt", map_location="cpu", weights_only=False)
    model = torch.load(run.path / "model.pt", map_location="cpu", weights_only=False)
    exported = model.get("state_dict", model)
    key = name.removeprefix("model.")
    assert any(torch.equal(v, best["state_dict"][name]) for k, v in exported.items() if k.endswith(key))
    assert yaml.safe_load(run.config.read_text())["ema_decay"] == 0.9


def test_recipe_defaults_fill_only_what_the_user_left_unset() -> None:
    cfg = with_recipe_defaults(TrainConfig(task="detect", data="x.csv"))
    assert cfg.lr == 3e-3 and cfg.channels_last and cfg.select_epoch == "last"  # the default detector's recipe
    assert cfg.val_every == 5 and cfg.val_max_share == 0.05
    assert (cfg.image_size, cfg.batch_size) == (512, 8)  # the benchmark's input side and batch
    given = with_recipe_defaults(TrainConfig(task="detect", data="x.csv", image_size=256, batch_size=4))
    assert (given.image_size, given.batch_size) == (256, 4)
    assert with_recipe_defaults(TrainConfig(task="detect", data="x.csv", val_every=1)).val_every == 1
    assert with_recipe_defaults(TrainConfig(task="detect", data="x.csv", select_epoch="best")).select_epoch == "best"
    assert not with_recipe_defaults(TrainConfig(task="detect", data="x.csv", channels_last=False)).channels_last
    assert with_recipe_defaults(TrainConfig(task="detect", data="x.csv", lr=1e-4)).lr == 1e-4
    retinanet = with_recipe_defaults(TrainConfig(task="detect", data="x.csv", model="retinanet"))
    assert retinanet.lr == 1e-3 and not retinanet.channels_last and retinanet.select_epoch == "best"
    assert retinanet.val_every == 1 and retinanet.val_max_share is None
    assert (retinanet.image_size, retinanet.batch_size) == (224, 32)  # the engine's: not the heat-map recipe
    assert with_recipe_defaults(TrainConfig(task="classify", data="x.csv")).lr == 1e-3


@pytest.mark.filterwarnings("ignore")
def test_a_time_budget_replans_the_epochs_and_the_cosine(phantom_dataset: Path, tmp_path: Path) -> None:
    import json

    common = {"task": "classify", "data": str(phantom_dataset), "target": "fractured", "model": "tiny_cnn"}
    sizes = {"image_size": 32, "batch_size": 16}
    run = train(**common, **sizes, epochs=500, time_budget_min=0.08, out=str(tmp_path / "r"), progress=False)
    epochs = json.loads(run.training.read_text())["epochs_run"]
    assert 1 <= epochs < 500  # stopped by the 5-second budget, not by `epochs`
    last = torch.load(run.checkpoints / "last.ckpt", map_location="cpu", weights_only=False)
    assert last["lr_schedulers"][0]["T_max"] == epochs  # the cosine was re-planned to end at the last epoch


def test_under_a_time_budget_epochs_is_not_a_limit(tmp_path: Path) -> None:
    """A crashed time-budget run resumes even past ``--epochs``: the budget, not the epoch count, ends it."""
    from osteon.engine.rundir import RunDir
    from osteon.engine.trainer import UNBOUNDED_EPOCHS, build_trainer

    run = RunDir.create(tmp_path / "r")
    cfg = TrainConfig(task="classify", data="x.csv", epochs=3, time_budget_min=5)
    assert build_trainer(cfg, run, progress=False)[0].max_epochs == UNBOUNDED_EPOCHS
    assert build_trainer(TrainConfig(task="classify", data="x.csv", epochs=3), run, progress=False)[0].max_epochs == 3


def test_a_validation_share_alone_adds_the_validation_schedule(tmp_path: Path) -> None:
    """``val_max_share`` without ``val_every`` still schedules validation (every epoch, within the share)."""
    from osteon.engine.rundir import RunDir
    from osteon.engine.schedule import ValidationSchedule
    from osteon.engine.trainer import build_trainer

    run = RunDir.create(tmp_path / "r")
    shared = build_trainer(TrainConfig(task="classify", data="x.csv", val_max_share=0.1), run, progress=False)[0]
    schedules = [cb for cb in shared.callbacks if isinstance(cb, ValidationSchedule)]
    assert [(s.every, s.max_share) for s in schedules] == [(1, 0.1)]
    plain = build_trainer(TrainConfig(task="classify", data="x.csv"), run, progress=False)[0]
    assert not [cb for cb in plain.callbacks if isinstance(cb, ValidationSchedule)]
