"""``val_every`` and the time budget: which epochs validate, and that the last one always does.

The callbacks are driven with a stand-in Trainer (a clock that advances as told) for the time budget, and one
tiny phantom classifier trains 5 epochs with ``val_every=2`` end to end.
"""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pandas as pd
import pytest
import torch

from osteon.engine import schedule as schedule_module
from osteon.engine import train
from osteon.engine.schedule import TimeBudget, ValidationSchedule


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _trainer(batches: int = 10) -> SimpleNamespace:
    model = torch.nn.Linear(1, 1)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    cosine = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=10)
    return SimpleNamespace(
        current_epoch=0,
        num_training_batches=batches,
        fit_loop=SimpleNamespace(max_epochs=100_000),
        should_stop=False,
        check_val_every_n_epoch=3,
        lr_scheduler_configs=[SimpleNamespace(scheduler=cosine)],
        strategy=SimpleNamespace(broadcast=lambda obj, src=0: obj),  # one process: rank 0's plan is its own
    )


def _epoch(trainer: SimpleNamespace, callbacks: list, clock: Clock, seconds: float) -> bool:
    """One epoch of ``trainer.num_training_batches`` batches taking ``seconds``; whether Lightning would validate."""
    for batch in range(trainer.num_training_batches):
        clock.now += seconds / trainer.num_training_batches
        for cb in callbacks:
            cb.on_train_batch_end(trainer, None, None, None, batch)
    validates = (trainer.current_epoch + 1) % trainer.check_val_every_n_epoch == 0  # Lightning's rule
    for cb in callbacks:
        if hasattr(cb, "on_train_epoch_end"):
            cb.on_train_epoch_end(trainer, None)
    return validates


def test_time_budget_plans_the_epochs_and_validation_catches_the_last(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = Clock()
    monkeypatch.setattr(schedule_module.time, "perf_counter", clock)
    trainer = _trainer()
    budget, every = TimeBudget(100.0, first_plan=10), ValidationSchedule(3)
    budget.on_train_start(trainer, None)
    assert trainer.fit_loop.max_epochs == 10  # shown until the first epoch is timed
    validated = []
    while not trainer.should_stop:
        if _epoch(trainer, [budget, every], clock, seconds=12.0):
            validated.append(trainer.current_epoch)
        trainer.current_epoch += 1
    assert trainer.current_epoch == 8  # 8 epochs of 12 s fit in 100 s
    assert trainer.lr_scheduler_configs[0].scheduler.T_max == 8  # the cosine ends at the last epoch
    assert validated == [2, 5, 7]  # every third epoch, and the last one although 8 is not a multiple of 3


def test_a_slower_epoch_moves_the_last_one_and_it_still_validates(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = Clock()
    monkeypatch.setattr(schedule_module.time, "perf_counter", clock)
    trainer = _trainer()
    budget, every = TimeBudget(100.0), ValidationSchedule(5)
    budget.on_train_start(trainer, None)
    validated = []
    for seconds in [10.0, 10.0, 10.0, 60.0, 10.0, 10.0]:
        if trainer.should_stop:
            break
        if _epoch(trainer, [budget, every], clock, seconds=seconds):
            validated.append(trainer.current_epoch)
        trainer.current_epoch += 1
    assert trainer.current_epoch == 4  # 90 s used after 4 epochs (22.5 s each): no fifth fits
    assert validated == [3]  # the epoch that turned out last


def test_validation_schedule_without_a_budget_and_its_argument() -> None:
    trainer = _trainer(batches=2)
    trainer.fit_loop.max_epochs = 5
    every = ValidationSchedule(2)
    validated = []
    for epoch in range(5):
        trainer.current_epoch = epoch
        if _epoch(trainer, [every], Clock(), seconds=1.0):
            validated.append(epoch)
    assert validated == [1, 3, 4]
    with pytest.raises(ValueError, match="every=0"):
        ValidationSchedule(0)


def _validate(trainer: SimpleNamespace, every: ValidationSchedule, clock: Clock, seconds: float) -> None:
    every.on_validation_start(trainer, None)
    clock.now += seconds
    every.on_validation_end(trainer, None)


def test_the_validation_share_spreads_validations_and_keeps_the_first_and_last(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Epochs and validations of 10 s each, a cap of 20 %: validate when the time spent validating plus one more
    validation stays within 20 % of the time so far; the first (to measure) and the last always run."""
    clock = Clock()
    monkeypatch.setattr(schedule_module.time, "perf_counter", clock)
    trainer = _trainer(batches=2)
    trainer.sanity_checking = False
    trainer.fit_loop.max_epochs = 20
    every = ValidationSchedule(1, max_share=0.2)
    every.on_train_start(trainer, None)
    validated = []
    for epoch in range(20):
        trainer.current_epoch = epoch
        if _epoch(trainer, [every], clock, seconds=10.0):
            validated.append(epoch)
            _validate(trainer, every, clock, seconds=10.0)
    # 10 s of 20 after epoch 0; the second fits at 100 s (20 <= 0.2 * 100), then one every 50 s; 19 is the last
    assert validated == [0, 8, 12, 16, 19]
    assert clock.now == pytest.approx(250.0)  # 200 s of training, 50 s (20 %) of validation


def test_the_validation_share_under_a_time_budget(monkeypatch: pytest.MonkeyPatch) -> None:
    """Validation as dear as an epoch, every 2nd epoch scheduled, 10 %: only the first and the last one run and the
    budget fits more epochs than with every scheduled validation (7 in 100 s against 5)."""
    clock = Clock()
    monkeypatch.setattr(schedule_module.time, "perf_counter", clock)

    def run(max_share: float | None) -> list[int]:
        clock.now = 0.0
        trainer = _trainer(batches=2)
        trainer.sanity_checking = False
        budget, every = TimeBudget(100.0), ValidationSchedule(2, max_share=max_share)
        budget.on_train_start(trainer, None)
        every.on_train_start(trainer, None)
        validated = []
        while not trainer.should_stop:
            if _epoch(trainer, [budget, every], clock, seconds=12.0):
                validated.append(trainer.current_epoch)
                _validate(trainer, every, clock, seconds=12.0)
            trainer.current_epoch += 1
        return validated

    assert run(None) == [1, 3, 4]  # 5 epochs of 12 s and 3 validations
    assert run(0.1) == [1, 6]  # 7 epochs and 2 validations
    with pytest.raises(ValueError, match="max_share=0"):
        ValidationSchedule(2, max_share=0.0)


def test_val_every_end_to_end(phantom_dataset: Path, tmp_path: Path) -> None:
    tiny = {"task": "classify", "target": "fractured", "model": "tiny_cnn", "image_size": 64, "batch_size": 16}
    run = train(data=str(phantom_dataset), out=str(tmp_path / "run"), epochs=5, val_every=2, select_epoch="last",
                threads=1, seed=0, progress=False, **tiny)  # fmt: skip
    metrics = pd.read_csv(run.logs / "metrics.csv")
    validated = sorted(metrics.loc[metrics["val/score"].notna(), "epoch"].astype(int).unique())
    assert validated == [1, 3, 4]
    record = json.loads(run.training.read_text())
    assert record["best_epoch"] == 4 and record["epochs_run"] == 5
    last_score = float(metrics.loc[metrics["epoch"] == 4, "val/score"].dropna().iloc[0])
    assert record["best_score"] == pytest.approx(last_score)
