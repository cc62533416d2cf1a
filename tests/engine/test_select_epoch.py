"""``select_epoch``: model.pt keeps the best validation epoch (default) or the last one.

A tiny phantom classifier trains 4 epochs with a high learning rate, so that its epochs differ; the test reads
which checkpoint's weights ended up in model.pt and what training.json, the model's meta and the summary say.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import torch

from osteon.cli.train import training_summary
from osteon.engine import train
from osteon.engine.checkpoint import load_model_file
from osteon.engine.rundir import RunDir

TINY = {
    "task": "classify",
    "target": "fractured",
    "model": "tiny_cnn",
    "image_size": 64,
    "batch_size": 16,
    "lr": 1e-2,
    "epochs": 4,
    "threads": 1,
    "seed": 1,
    "progress": False,
}


def _model_weights(run: RunDir) -> dict[str, torch.Tensor]:
    return load_model_file(run.model)["state_dict"]


def _checkpoint_weights(path: Path) -> dict[str, torch.Tensor]:
    state = torch.load(path, map_location="cpu", weights_only=False)["state_dict"]
    return {k.removeprefix("model."): v for k, v in state.items() if k.startswith("model.")}


def _same(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


@pytest.fixture(scope="module")
def runs(phantom_dataset: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, RunDir]:
    root = tmp_path_factory.mktemp("select")
    return {
        choice: train(data=str(phantom_dataset), out=str(root / choice), select_epoch=choice, **TINY)
        for choice in ("best", "last")
    }


def test_last_keeps_the_final_epoch_and_says_so(runs: dict[str, RunDir]) -> None:
    run = runs["last"]
    assert _same(_model_weights(run), _checkpoint_weights(run.last_checkpoint))
    record = json.loads(run.training.read_text())
    assert record["best_epoch"] == record["epochs_run"] - 1 == 3
    assert record["select_epoch"] == "last" and record["best_checkpoint"] == "last.ckpt"
    scores = pd.read_csv(run.logs / "metrics.csv").dropna(subset=["val/score"]).set_index("epoch")["val/score"]
    assert record["best_score"] == pytest.approx(scores.loc[3])  # the last epoch's score, not the best one
    assert load_model_file(run.model)["meta"]["selected_by"] == "the last epoch (select_epoch: last)"
    assert "kept the last epoch 4" in training_summary(run)


def test_best_stays_the_default_and_keeps_the_best_checkpoint(runs: dict[str, RunDir]) -> None:
    run = runs["best"]
    record = json.loads(run.training.read_text())
    assert record["select_epoch"] == "best" and record["best_checkpoint"] == "best.ckpt"
    assert _same(_model_weights(run), _checkpoint_weights(run.checkpoints / "best.ckpt"))
    scores = pd.read_csv(run.logs / "metrics.csv").dropna(subset=["val/score"]).set_index("epoch")["val/score"]
    assert record["best_epoch"] == int(scores.idxmax()) < 3  # an earlier epoch: the two selections differ here
    assert "best epoch" in training_summary(run)
    # both trainings are the same up to the selection: the same last epoch
    assert _same(_checkpoint_weights(run.last_checkpoint), _checkpoint_weights(runs["last"].last_checkpoint))


def test_the_report_names_how_the_epoch_was_chosen(runs: dict[str, RunDir]) -> None:
    from osteon.engine import evaluate
    from osteon.report.rundata import RunData
    from osteon.report.sections import method_tables

    def selection(run: RunDir) -> dict[str, str]:
        evaluate(run.path, split="val", n_resamples=20, progress=False)  # a report needs metrics
        rows = [row for table in method_tables(RunData.load(run.path)) for row in table.rows]
        return {row[0]: row[1] for row in rows if row[0] in ("model selection", "selected epoch")}

    last, best = selection(runs["last"]), selection(runs["best"])
    assert last["model selection"].startswith("the last epoch (checkpoint last.ckpt)")
    assert best["model selection"] == "epoch with the best validation AUC (checkpoint best.ckpt)"
    assert last["selected epoch"].startswith("3 (0-based) of 4") and best["selected epoch"].startswith("2 (0-based)")
