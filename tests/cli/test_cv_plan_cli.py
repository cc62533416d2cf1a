"""The new commands answer --help without torch, and name their options."""

from __future__ import annotations

import json
import subprocess
import sys

from typer.testing import CliRunner

from osteon.cli.main import app

WIDE = {"COLUMNS": "250", "TERMINAL_WIDTH": "250"}

HELP = """
import json, sys
from typer.testing import CliRunner
from osteon.cli.main import app
codes = {" ".join(a): CliRunner().invoke(app, a).exit_code for a in (["cv", "--help"], ["ensemble", "--help"],
         ["plan", "--help"], ["train", "--help"])}
heavy = sorted(m for m in ("torch", "torchvision", "lightning", "monai", "timm") if m in sys.modules)
print(json.dumps({"codes": codes, "heavy": heavy}))
"""


def test_help_of_cv_ensemble_plan_imports_no_torch() -> None:
    done = subprocess.run([sys.executable, "-c", HELP], capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert set(result["codes"].values()) == {0} and result["heavy"] == []


def test_options_are_listed() -> None:
    runner = CliRunner()
    cv = runner.invoke(app, ["cv", "--help"], env=WIDE).output
    for flag in ("--folds", "--holdout", "--no-ensemble", "--n-resamples", "--image-size", "--task"):
        assert flag in cv, flag
    train = runner.invoke(app, ["train", "--help"], env=WIDE).output
    assert "--folds" in train and "--plan" in train
    plan = runner.invoke(app, ["plan", "--help"], env=WIDE).output
    assert "--label-column" in plan and "--sample" in plan


def test_errors_are_one_line(tmp_path) -> None:
    result = CliRunner().invoke(app, ["ensemble", str(tmp_path / "a"), "--out", str(tmp_path / "e")])
    assert result.exit_code == 2 and "at least two runs" in result.output
    result = CliRunner().invoke(app, ["plan", str(tmp_path), "--out", str(tmp_path / "p.yaml")])
    assert result.exit_code == 2 and "Error" in result.output
