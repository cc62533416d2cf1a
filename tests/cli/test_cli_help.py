"""``--help`` is fast (no torch), shows every default and every task; warnings shown once; the training summary."""

from __future__ import annotations

import json
import subprocess
import sys
import types
import warnings
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from osteon.cli._common import show_warnings
from osteon.cli.main import app
from osteon.cli.train import print_training_summary
from osteon.engine.config import TaskName
from osteon.engine.rundir import RunDir

runner = CliRunner()
WIDE = {"COLUMNS": "250", "TERMINAL_WIDTH": "250"}  # one line per option, so texts are not wrapped

HELP_WITHOUT_TORCH = """
import json, sys
from typer.testing import CliRunner
from osteon.cli.main import app
codes = {}
for args in (["--help"], ["train", "--help"], ["evaluate", "--help"], ["predict", "--help"], ["explain", "--help"],
             ["report", "--help"], ["data", "--help"], ["data", "check", "--help"]):
    codes[" ".join(args)] = CliRunner().invoke(app, args).exit_code
from osteon.engine import RunDir, TaskName, TrainConfig  # the light part of the engine
heavy = sorted(m for m in ("torch", "torchvision", "lightning", "monai", "timm") if m in sys.modules)
print(json.dumps({"codes": codes, "heavy": heavy}))
"""


def test_help_imports_no_torch() -> None:
    """Every --help used to wait 7-20 s for torch and Lightning; now none of them is imported."""
    done = subprocess.run(
        [sys.executable, "-c", HELP_WITHOUT_TORCH], capture_output=True, text=True, timeout=300, check=False
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert set(result["codes"].values()) == {0}, result["codes"]
    assert result["heavy"] == []


def test_engine_exports_stay_importable_and_lazy() -> None:
    import importlib

    importlib.import_module("osteon.engine.evaluate")  # binding the submodule must not shadow the function
    from osteon.engine import Predictor, RunDir, TaskName, TrainConfig, evaluate, train
    from osteon.engine.evaluate import evaluate as evaluate_function
    from osteon.engine.fit import train as train_function

    assert evaluate is evaluate_function and not isinstance(evaluate, types.ModuleType)
    assert train is train_function and Predictor.__name__ == "Predictor"
    assert RunDir.__name__ == "RunDir" and TaskName.CLASSIFY == "classify" and TrainConfig.__name__ == "TrainConfig"
    with pytest.raises(AttributeError, match="no attribute 'trian'"):
        import osteon.engine

        _ = osteon.engine.trian


def _option_lines(output: str) -> dict[str, str]:
    lines: dict[str, str] = {}
    for line in output.splitlines():
        words = line.strip("│ ").split()
        if words and words[0].startswith("--"):
            lines[words[0]] = " ".join(words)
    return lines


def test_train_help_shows_defaults_and_every_task() -> None:
    """Rich markup ate "[default: …]"; --task listed only classify/grade/regress."""
    result = runner.invoke(app, ["train", "--help"], env=WIDE)
    assert result.exit_code == 0, result.output
    options = _option_lines(result.output)
    assert options["--image-size"].endswith(
        "Square input size in pixels (the default detector's recipe: 512) [default: 224]"
    )
    assert "[default: resnet18]" in options["--model"] and "timm:<name>" in options["--model"]
    assert "[default: 10]" in options["--epochs"] and "[default: 0.001]" in options["--lr"]
    assert "[default: no-hflip]" in options["--hflip"] and "[default: augment]" in options["--augment"]
    assert "default" not in options["--task"] and "default" not in options["--pretrained"]  # no default: none shown
    for task in TaskName:
        assert task.value in options["--task"], task


def test_warnings_are_shown_once_with_a_count(capsys: pytest.CaptureFixture[str]) -> None:
    with show_warnings():
        for _ in range(5):
            warnings.warn("no patient ids.  Fix: add a column.", UserWarning, stacklevel=1)
        warnings.warn("another one", UserWarning, stacklevel=1)
        warnings.warn("old API", DeprecationWarning, stacklevel=1)
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert lines == ["Warning: no patient ids. Fix: add a column. (5 times)", "Warning: another one"]


def _fake_run(tmp_path: Path, training: dict | None) -> RunDir:
    run = RunDir(tmp_path / "run")
    run.path.mkdir()
    if training is not None:
        run.write_json(run.training, training)
    for path in (run.model, run.predictions("val")):
        path.write_text("x")
    return run


def test_training_summary_names_best_epoch_score_and_files(tmp_path: Path, capsys) -> None:
    record = {
        "best_epoch": 2,
        "best_score": 4.56789,
        "monitor": {"name": "MAE", "direction": "min"},
        "epochs_run": 5,
        "duration_s": 72.4,
    }
    run = _fake_run(tmp_path, record)
    print_training_summary(run)
    err = " ".join(capsys.readouterr().err.split())
    assert "Trained 5 epochs in 1 min 12 s; best epoch 3: validation MAE 4.568 (lower is better)." in err
    assert f"model {run.model}" in err and f"validation predictions {run.predictions('val')}" in err
    assert "operating point" not in err  # not written: not named


@pytest.mark.parametrize(
    ("record", "expected"),
    [
        ({"best_epoch": 0, "epochs_run": 1, "duration_s": 3.0}, "Trained 1 epoch in 3.0 s; best epoch 1."),
        ({"best_epoch": 4, "best_score": 0.9, "epochs_run": 5}, "best epoch 5: validation score 0.900."),
        ({"best_epoch": -1, "epochs_run": 2}, "Trained 2 epochs."),
        (None, "Training finished."),
    ],
)
def test_training_summary_without_some_fields(tmp_path: Path, capsys, record: dict | None, expected: str) -> None:
    print_training_summary(_fake_run(tmp_path, record))
    assert expected in " ".join(capsys.readouterr().err.split())


@pytest.mark.slow
def test_osteon_train_ends_with_the_summary_and_each_warning_once(phantom_dataset: Path, tmp_path: Path) -> None:
    """The train path: warnings as single yellow lines (not raw Python warnings), then the summary."""
    frame = pd.read_csv(phantom_dataset).drop(columns=["patient_id"])
    data = phantom_dataset.parent / "no_patient_ids.csv"
    frame.to_csv(data, index=False)
    out = tmp_path / "run"
    args = ["train", "--task", "classify", "--data", str(data), "--target", "fractured", "--model", "tiny_cnn"]
    args += ["--image-size", "32", "--epochs", "2", "--batch-size", "16", "--out", str(out)]
    result = runner.invoke(app, args, env=WIDE)
    assert result.exit_code == 0, result.output
    assert result.stdout.strip().splitlines()[-1] == str(out)
    err = result.stderr
    assert "UserWarning" not in err and "warnings.warn" not in err
    no_ids = [line for line in err.splitlines() if line.startswith("Warning:") and "no patient ids" in line]
    assert no_ids and len(no_ids) == len(set(no_ids))
    summary = " ".join(err.split())
    assert "Trained 2 epochs" in summary and "best epoch" in summary
    assert str(RunDir(out).model) in summary and str(RunDir(out).predictions("val")) in summary
