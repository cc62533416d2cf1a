"""``osteon probe`` and ``osteon train --pretrained RUN`` through Typer's runner."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from osteon.cli.main import app

runner = CliRunner()
PROVENANCE = {
    "method": "simclr",
    "epochs": 2,
    "data": ["phantoms"],
    "n_images": 40,
    "image_size": 32,
    "created_utc": "2026-01-01T00:00:00+00:00",
    "osteon_version": "0.1.0",
    "run": "pre",
    "final_loss": 1.0,
}


@pytest.fixture(scope="module")
def pretrain_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from osteon.models.backbone_file import save_backbone
    from osteon.models.network import create_backbone
    from osteon.models.registry import get_model_entry

    run = tmp_path_factory.mktemp("pretrain_cli")
    torch.manual_seed(0)
    state = create_backbone(get_model_entry("tiny_cnn")).state_dict()
    save_backbone(run / "backbone.pt", "tiny_cnn", 1, state, PROVENANCE)
    return run


def test_probe_writes_json_and_figures(pretrain_run: Path, phantom_dataset: Path, tmp_path: Path) -> None:
    out = tmp_path / "probe"
    args = ["probe", str(pretrain_run), "--data", str(phantom_dataset), "--target", "fractured", "--out", str(out)]
    result = runner.invoke(app, [*args, "--n-resamples", "20", "--batch-size", "16"])
    assert result.exit_code == 0, result.output
    assert result.stdout.strip().splitlines()[-1] == str(out / "probe.json")
    assert "simclr tiny_cnn: knn accuracy" in result.stderr and "random tiny_cnn" in result.stderr
    assert "linear auc: simclr tiny_cnn − random tiny_cnn = " in result.stderr
    report = json.loads((out / "probe.json").read_text())
    assert set(report["results"]) == {"simclr tiny_cnn", "random tiny_cnn"} and report["image_size"] == 32
    assert all((out / f"probe.{suffix}").is_file() for suffix in ("png", "svg", "pdf"))


def test_probe_and_train_errors_are_one_line(pretrain_run: Path, phantom_dataset: Path, tmp_path: Path) -> None:
    result = runner.invoke(app, ["probe", "random", "--data", str(phantom_dataset)])
    assert result.exit_code == 2 and "needs --model" in result.stderr
    args = ["train", "--task", "classify", "--data", str(phantom_dataset), "--target", "fractured"]
    args += ["--model", "resnet18", "--pretrained", str(pretrain_run), "--out", str(tmp_path / "run")]
    result = runner.invoke(app, args)
    assert result.exit_code == 2, result.output
    assert (
        "Error:" in result.stderr
        and "holds a tiny_cnn backbone" in result.stderr
        and "--model tiny_cnn" in result.stderr
    )
    assert not (tmp_path / "run").exists()
