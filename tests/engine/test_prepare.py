"""Run preparation: every check runs before the run directory exists; given splits must not leak patients."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from osteon.engine import train
from osteon.engine.config import TrainConfig
from osteon.engine.prepare import prepare, prepare_run
from osteon.errors import ConfigError, SplitLeakError

FAST = {"model": "tiny_cnn", "image_size": 32, "batch_size": 16, "epochs": 1, "progress": False}


def _leaky_copy(phantom_dataset: Path, tmp_path: Path) -> tuple[Path, str]:
    """The phantom Manifest with one patient's two knees put in train and test (a leak)."""
    frame = pd.read_csv(phantom_dataset)
    frame["image"] = [str(phantom_dataset.parent / p) for p in frame["image"]]
    patient = frame["patient_id"].value_counts().index[0]
    rows = np.flatnonzero(frame["patient_id"] == patient)
    frame.loc[rows[0], "split"], frame.loc[rows[1], "split"] = "train", "test"
    path = tmp_path / "leaky.csv"
    frame.to_csv(path, index=False)
    return path, str(patient)


def test_a_split_column_that_leaks_a_patient_is_refused(phantom_dataset: Path, tmp_path: Path) -> None:
    data, patient = _leaky_copy(phantom_dataset, tmp_path)
    out = tmp_path / "run"
    with pytest.raises(SplitLeakError, match=rf"{patient} in test/train.*--allow-patient-overlap"):
        train(task="classify", data=str(data), target="fractured", out=str(out), **FAST)
    assert not out.exists()  # nothing half-made


def test_a_split_file_that_leaks_is_refused_unless_allowed(phantom_dataset: Path, tmp_path: Path) -> None:
    data, patient = _leaky_copy(phantom_dataset, tmp_path)
    splits = tmp_path / "splits.csv"
    pd.read_csv(data)[["image", "split"]].to_csv(splits, index=False)
    clean = tmp_path / "clean.csv"
    pd.read_csv(data).drop(columns=["split"]).to_csv(clean, index=False)
    options = {"task": "classify", "data": str(clean), "target": "fractured", "split_file": str(splits)}
    with pytest.raises(SplitLeakError, match=f"--split-file.*{patient}"):
        prepare(TrainConfig(**options, out=str(tmp_path / "a")))
    with pytest.warns(UserWarning, match="Training anyway"):
        run = prepare_run(TrainConfig(**options, allow_patient_overlap=True, out=str(tmp_path / "b")))
    decision = json.loads(run.state.read_text())["split"]
    assert decision["source"] == "file" and "allowed by --allow-patient-overlap" in decision["reason"]


def test_an_infinite_regression_target_fails_before_the_run_directory_exists(
    phantom_dataset: Path, tmp_path: Path
) -> None:
    frame = pd.read_csv(phantom_dataset)
    frame["image"] = [str(phantom_dataset.parent / p) for p in frame["image"]]
    frame.loc[3, "target"] = np.inf
    data = tmp_path / "inf.csv"
    frame.to_csv(data, index=False)
    out = tmp_path / "run"
    with pytest.raises(ConfigError, match=r"infinite value.*row.*3"):
        train(task="regress", data=str(data), out=str(out), **FAST)
    assert not out.exists()
    # the same --out works once the value is fixed (no half-made directory blocks it)
    frame.loc[3, "target"] = 1.0
    frame.to_csv(data, index=False)
    run = train(task="regress", data=str(data), out=str(out), **FAST)
    assert run.model.is_file()


def test_the_engine_writes_the_plan_and_the_monitor(phantom_dataset: Path, tmp_path: Path) -> None:
    run = prepare_run(
        TrainConfig(
            task="detect",
            data=str(phantom_dataset),
            model="retinanet",
            encoder="resnet18",
            image_size=64,
            out=str(tmp_path / "det"),
        )
    )
    plan = json.loads(run.plan.read_text())
    assert plan == json.loads(run.state.read_text())["task"]["extra"]["plan"]
