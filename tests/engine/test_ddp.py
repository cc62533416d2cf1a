"""A real 2-process DDP fit on CPU (gloo), launched the way users launch it: the CLI."""

from __future__ import annotations

import math
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import torch

from osteon.engine import Predictor


def test_two_process_ddp_fit_on_cpu_shards_the_data_and_trains(phantom_dataset: Path, tmp_path: Path) -> None:
    out = tmp_path / "ddp"
    batch, epochs = 8, 2
    command = [
        sys.executable,
        "-m",
        "osteon.cli.main",
        "train",
        "--task",
        "classify",
        "--target",
        "fractured",
        "--data",
        str(phantom_dataset),
        "--model",
        "tiny_cnn",
        "--image-size",
        "32",
        "--batch-size",
        str(batch),
        "--epochs",
        str(epochs),
        "--accelerator",
        "cpu",
        "--devices",
        "2",
        "--strategy",
        "ddp",
        "--out",
        str(out),
    ]
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip().splitlines() == [str(out)]  # only rank 0 reports
    n_train = int((pd.read_csv(out / "manifest.csv")["split"] == "train").sum())
    last = torch.load(out / "checkpoints" / "last.ckpt", weights_only=False)
    # each of the 2 processes saw half the training images per epoch
    assert last["global_step"] == epochs * math.ceil(math.ceil(n_train / 2) / batch)
    assert last["global_step"] < epochs * math.ceil(n_train / batch)
    predictor = Predictor.from_run(out)
    assert predictor.task.state.class_names == ["0", "1"]
