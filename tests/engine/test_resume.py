"""``--resume`` continues a run as if it had never stopped; training prints only what a user needs.

The equality tests train the same tiny phantom classifier (tiny_cnn, 64 px, augmentation on, one thread)
for 4 epochs in one go, and in two sessions: stopped after 2 epochs (a finished run extended with
``epochs=4``, or a crash at the start of the third epoch) and resumed. Same weights and same validation
scores mean every source of randomness (shuffling, the weighted sampler, augmentation) was restored.
"""

from __future__ import annotations

import json
import math
import random
import warnings
from pathlib import Path
from types import SimpleNamespace

import lightning as L
import numpy as np
import pandas as pd
import pytest
import torch
from torch.utils.data import DataLoader

from osteon.engine import train
from osteon.engine.callbacks import ResumableCSVLogger, capture_rng, restore_rng
from osteon.engine.config import TrainConfig
from osteon.engine.resume import after_resume, before_resume
from osteon.engine.rundir import RunDir
from osteon.engine.trainer import EpochProgressBar, RunCheckpoint
from osteon.errors import RunDirError

SMALL = {
    "task": "classify",
    "target": "fractured",
    "model": "tiny_cnn",
    "image_size": 64,
    "batch_size": 16,
    "lr": 3e-3,
    "threads": 1,
    "seed": 3,
    "progress": False,
}


class CrashAtEpochStart(L.Callback):
    """Simulates a crash (power cut, OOM kill) at the start of an epoch, after earlier epochs were checkpointed."""

    def __init__(self, epoch: int) -> None:
        self.epoch = epoch

    def on_train_epoch_start(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        if trainer.current_epoch == self.epoch:
            raise RuntimeError("simulated crash")


class RecordRates(L.Callback):
    """The learning rate at the start of every epoch."""

    def __init__(self) -> None:
        self.rates: dict[int, float] = {}

    def on_train_epoch_start(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        self.rates[trainer.current_epoch] = trainer.optimizers[0].param_groups[0]["lr"]


def _weights(run: RunDir) -> dict[str, torch.Tensor]:
    return torch.load(run.last_checkpoint, map_location="cpu", weights_only=False)["state_dict"]


def _assert_same_weights(a: RunDir, b: RunDir) -> None:
    wa, wb = _weights(a), _weights(b)
    assert wa.keys() == wb.keys()
    for name in wa:
        assert torch.allclose(wa[name], wb[name]), name


def _val_scores(run: RunDir) -> pd.Series:
    log = pd.read_csv(run.logs / "metrics.csv")
    return log.dropna(subset=["val/score"]).set_index("epoch")["val/score"]


def _assert_every_epoch_once(run: RunDir, epochs: int) -> None:
    log = pd.read_csv(run.logs / "metrics.csv")
    for column in ("val/score", "train/loss"):
        assert log.dropna(subset=[column])["epoch"].tolist() == list(range(epochs)), column


@pytest.fixture(scope="module")
def uninterrupted(phantom_dataset: Path, tmp_path_factory: pytest.TempPathFactory) -> RunDir:
    """4 epochs in one session (constant learning rate, shuffled batches)."""
    out = tmp_path_factory.mktemp("resume") / "whole"
    return train(data=str(phantom_dataset), out=str(out), epochs=4, scheduler="none", **SMALL)


@pytest.fixture(scope="module")
def extended(phantom_dataset: Path, tmp_path_factory: pytest.TempPathFactory) -> RunDir:
    """The same run trained for 2 epochs (finished), then resumed with ``epochs=4``."""
    out = tmp_path_factory.mktemp("resume") / "extended"
    first = train(data=str(phantom_dataset), out=str(out), epochs=2, scheduler="none", **SMALL)
    with warnings.catch_warnings():  # "model.pt: now holds epoch 4 ..." when a later epoch is better
        warnings.simplefilter("ignore", UserWarning)
        return train(resume=first.path, epochs=4, progress=False)


def test_extended_run_equals_the_uninterrupted_run(uninterrupted: RunDir, extended: RunDir) -> None:
    _assert_same_weights(uninterrupted, extended)
    pd.testing.assert_series_equal(_val_scores(uninterrupted), _val_scores(extended))
    whole = json.loads(uninterrupted.training.read_text())
    more = json.loads(extended.training.read_text())
    assert (more["best_epoch"], more["best_score"]) == (whole["best_epoch"], whole["best_score"])


def test_extended_run_keeps_its_log_and_adds_up_its_time(extended: RunDir) -> None:
    _assert_every_epoch_once(extended, 4)  # Lightning's CSVLogger deleted the first session's epochs
    record = json.loads(extended.training.read_text())
    sessions = record["sessions"]
    assert [(s["first_epoch"], s["last_epoch"]) for s in sessions] == [(0, 1), (2, 3)]
    assert all(s["duration_s"] >= 0 for s in sessions)
    assert record["duration_s"] == pytest.approx(sum(s["duration_s"] for s in sessions), abs=0.11)
    assert record["epochs_run"] == 4
    # model.pt is the best of all 4 epochs; the 2-epoch model is kept only if a later epoch replaced it
    replaced = record.get("replaced_models", [])
    assert (extended.path / "model_epochs2.pt").is_file() == bool(replaced)
    assert all(r["best_epoch"] <= 1 and r["replaced_by_epoch"] == record["best_epoch"] >= 2 for r in replaced)


def test_a_run_with_no_epochs_left_is_not_resumed(extended: RunDir) -> None:
    before = extended.model.stat().st_mtime_ns
    with pytest.raises(RunDirError, match=r"already trained 4 epochs.*--epochs"):
        train(resume=extended.path, epochs=4, progress=False)
    assert extended.model.stat().st_mtime_ns == before


def test_resume_after_a_crash_equals_the_uninterrupted_run(phantom_dataset: Path, tmp_path: Path) -> None:
    """Cosine schedule and a class-weighted random sampler: the schedule and the sampler's draws are restored."""
    common = {**SMALL, "data": str(phantom_dataset), "epochs": 4, "class_weighting": "sampler"}
    whole = train(out=str(tmp_path / "whole"), **common)
    with pytest.raises(RuntimeError, match="simulated crash"):
        train(out=str(tmp_path / "crashed"), callbacks=[CrashAtEpochStart(2)], **common)
    resumed = train(resume=tmp_path / "crashed", progress=False)
    _assert_same_weights(whole, resumed)
    pd.testing.assert_series_equal(_val_scores(whole), _val_scores(resumed))
    _assert_every_epoch_once(resumed, 4)
    sessions = json.loads(resumed.training.read_text())["sessions"]
    assert [(s["first_epoch"], s["last_epoch"]) for s in sessions] == [(0, 1), (2, 3)]


def test_extending_a_cosine_schedule_follows_the_longer_plan(phantom_dataset: Path, tmp_path: Path) -> None:
    """Not equal to a 4-epoch run: its first 2 epochs were annealed over 2 epochs. From epoch 3 on, the rate
    follows the 4-epoch cosine (before the fix the restored 2-epoch cosine rose again, ending at the full rate)."""
    rates = RecordRates()
    first = train(data=str(phantom_dataset), out=str(tmp_path / "r"), epochs=2, callbacks=[rates], **SMALL)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        train(resume=first.path, epochs=4, progress=False, callbacks=[rates])
    lr = SMALL["lr"]
    for epoch in (2, 3):
        assert rates.rates[epoch] == pytest.approx(lr * (1 + math.cos(math.pi * epoch / 4)) / 2)


def test_rows_logged_after_the_last_checkpoint_are_replaced(tmp_path: Path) -> None:
    """A session killed after logging epoch 2 but before checkpointing it: the resumed session logs epoch 2 again."""
    logs = tmp_path / "logs"
    logs.mkdir()
    rows = [{"epoch": e, "step": 2 * e + 1, "val/score": 0.5 + e / 10} for e in range(3)]
    pd.DataFrame(rows).to_csv(logs / "metrics.csv", index=False)
    logger = ResumableCSVLogger(logs, name="", version="")
    logger.resume_at(2)
    logger.log_metrics({"epoch": 2, "val/score": 0.9, "train/loss": 0.3}, step=5)
    logger.save()
    log = pd.read_csv(logs / "metrics.csv")
    assert log["epoch"].tolist() == [0, 1, 2]
    assert log["val/score"].tolist() == [0.5, 0.6, 0.9]
    assert log["train/loss"].isna().tolist() == [True, True, False]


def _finished_run(path: Path, *, best_epoch: int, epochs_run: int) -> RunDir:
    run = RunDir(path)
    path.mkdir()
    run.model.write_bytes(b"weights of epoch %d" % best_epoch)
    record = {"best_epoch": best_epoch, "best_score": 0.8, "monitor": {"name": "AUC"}, "epochs_run": epochs_run}
    run.write_json(run.training, record)
    return run


def test_a_replaced_model_is_kept_and_recorded(tmp_path: Path) -> None:
    run = _finished_run(tmp_path / "run", best_epoch=1, epochs_run=2)
    previous = before_resume(run, TrainConfig(task="classify", data="x", epochs=4))
    assert previous is not None and previous.copy.name == "model_epochs2.pt"
    run.model.write_bytes(b"weights of epoch 3")  # the extension found a better epoch
    run.write_json(run.training, {**run.read_json(run.training), "best_epoch": 3, "best_score": 0.9, "epochs_run": 4})
    replaced = r"epoch 4 \(AUC 0.9\) of 4 epochs, instead of epoch 2 \(AUC 0.8\).*model_epochs2.pt"
    with pytest.warns(UserWarning, match=replaced):
        after_resume(run, previous, finished=True)
    assert (run.path / "model_epochs2.pt").read_bytes() == b"weights of epoch 1"
    replaced = run.read_json(run.training)["replaced_models"]
    assert replaced == [
        {"file": "model_epochs2.pt", "best_epoch": 1, "best_score": 0.8, "epochs_run": 2, "replaced_by_epoch": 3}
    ]


@pytest.mark.parametrize("finished", [True, False])
def test_an_unchanged_model_leaves_no_copy(tmp_path: Path, finished: bool) -> None:
    run = _finished_run(tmp_path / "run", best_epoch=1, epochs_run=2)
    previous = before_resume(run, TrainConfig(task="classify", data="x", epochs=4))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        after_resume(run, previous, finished=finished)
    assert sorted(p.name for p in run.path.iterdir()) == ["model.pt", "training.json"]
    assert "replaced_models" not in run.read_json(run.training)


def test_progress_bar_counts_epochs_from_one() -> None:
    bar = EpochProgressBar()
    bar._trainer = SimpleNamespace(max_epochs=2)  # type: ignore[assignment]
    assert [bar._get_train_description(e).strip() for e in (0, 1)] == ["Epoch 1/2", "Epoch 2/2"]


def test_training_prints_no_lightning_chatter(
    phantom_dataset: Path, tmp_path: Path, capfd: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("INFO")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        train(data=str(phantom_dataset), out=str(tmp_path / "r"), epochs=2, **{**SMALL, "progress": True})
    out, err = capfd.readouterr()
    printed = out + err + "\n".join(r.getMessage() for r in caplog.records)
    for chatter in ("GPU available", "TPU available", "Tip", "litlogger", "litmodels", "deprecated", "stopped"):
        assert chatter not in printed, chatter
    library = [w for w in caught if issubclass(w.category, DeprecationWarning | FutureWarning)]
    assert not library, [str(w.message) for w in library]
    assert "Epoch 2/2" in err and "Epoch 2/1" not in err and "Epoch 1/1" not in err
    assert "val/AUC" in err  # the task's metric under its own name
    log = pd.read_csv(tmp_path / "r" / "logs" / "metrics.csv")
    assert {"val/AUC", "val/score"} <= set(log.columns)


def test_a_moved_run_keeps_its_best_score(tmp_path: Path) -> None:
    """Resuming a copied run directory must not forget the best score (``best.ckpt`` would be replaced by worse)."""
    old = RunCheckpoint(dirpath=tmp_path / "old" / "checkpoints", filename="best", monitor="val/score", mode="max")
    old.best_model_score = torch.tensor(0.9)
    old.best_model_path = str(tmp_path / "old" / "checkpoints" / "best.ckpt")
    old.best_k_models = {old.best_model_path: old.best_model_score}
    new = RunCheckpoint(dirpath=tmp_path / "new" / "checkpoints", filename="best", monitor="val/score", mode="max")
    new.load_state_dict(old.state_dict())
    assert new.best_model_score == pytest.approx(0.9)
    assert new.best_model_path == str(tmp_path / "new" / "checkpoints" / "best.ckpt")
    assert list(new.best_k_models) == [new.best_model_path]


def test_random_state_includes_a_loaders_own_generator() -> None:
    """A DataLoader with its own generator (shuffling, sampler) is restored with the global generators."""
    loader = DataLoader(range(12), batch_size=4, shuffle=True, generator=torch.Generator().manual_seed(0))
    fit_loop = SimpleNamespace(_combined_loader=None, _data_source=SimpleNamespace(instance=loader))
    trainer = SimpleNamespace(fit_loop=fit_loop)

    def draw() -> list[object]:
        return [[b.tolist() for b in loader], random.random(), float(np.random.rand()), float(torch.rand(1))]

    saved = capture_rng(trainer)  # type: ignore[arg-type]
    first = draw()
    restore_rng(saved, trainer)  # type: ignore[arg-type]
    assert draw() == first


def test_resuming_from_a_truncated_checkpoint_names_the_file(extended: RunDir, tmp_path: Path) -> None:
    import shutil

    copy = RunDir(tmp_path / "copy")
    shutil.copytree(extended.path, copy.path)
    data = copy.last_checkpoint.read_bytes()
    copy.last_checkpoint.write_bytes(data[: len(data) // 2])  # an interrupted copy
    with pytest.raises(RunDirError, match=r"last\.ckpt: the training checkpoint is truncated or corrupt"):
        train(resume=copy.path, epochs=6, progress=False)
