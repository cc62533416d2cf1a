"""The CSV adapter's options reach the CLI (``osteon data ...``, ``osteon train``) and YAML (issue #10).

A tiny CSV whose columns have none of the default names (``file``? no: ``scan``, ``diagnosis``, ``subject``):
without the options it cannot be read, and the error suggests a flag that must exist.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from typer.testing import CliRunner

from osteon.cli.main import app
from osteon.data.adapters import DATASET_OPTIONS
from osteon.engine.config import TrainConfig

runner = CliRunner()
OPTIONS = ["--image-column", "scan", "--label-column", "diagnosis", "--patient-column", "subject"]


@pytest.fixture(scope="module")
def odd_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """16 images of 8 subjects; columns scan (path), diagnosis (label), subject (patient), cohort (split)."""
    root = tmp_path_factory.mktemp("odd_csv")
    rng = np.random.default_rng(0)
    rows = []
    for i in range(16):
        label = "lesion" if i % 2 else "clear"
        pixels = rng.integers(0, 60, (32, 32), dtype=np.uint8)
        if label == "lesion":
            pixels[8:24, 8:24] = 220
        (root / "pics").mkdir(exist_ok=True)
        Image.fromarray(pixels).save(root / "pics" / f"s{i:02d}.png")
        rows.append({"scan": f"pics/s{i:02d}.png", "diagnosis": label, "subject": f"S{i // 2:02d}"})
    table = pd.DataFrame(rows)
    table["cohort"] = ["train"] * 10 + ["valid"] * 4 + ["test"] * 2
    table.to_csv(root / "table.csv", index=False)
    return root / "table.csv"


def test_every_dataset_option_is_a_train_config_field() -> None:
    assert set(DATASET_OPTIONS) <= set(TrainConfig.model_fields)
    cfg = TrainConfig(task="classify", data="d", image_column="scan", label_column="diagnosis")
    assert cfg.dataset_options() == {"image_column": "scan", "label_column": "diagnosis"}


def test_missing_image_column_suggests_a_flag_that_exists(odd_csv: Path) -> None:
    failed = runner.invoke(app, ["data", "summary", str(odd_csv), "--format", "csv", "--json"])
    assert failed.exit_code == 2
    assert "--image-column" in failed.stderr
    for extra in (["--format", "csv"], []):  # the option alone is enough to pick the csv format
        fixed = runner.invoke(app, ["data", "summary", str(odd_csv), *extra, "--image-column", "scan", "--json"])
        assert fixed.exit_code == 0, fixed.output
        assert json.loads(fixed.stdout)["images"] == 16


def test_summary_check_and_split_take_the_csv_options(odd_csv: Path, tmp_path: Path) -> None:
    summary = runner.invoke(app, ["data", "summary", str(odd_csv), *OPTIONS, "--split-column", "cohort", "--json"])
    assert summary.exit_code == 0, summary.output
    result = json.loads(summary.stdout)
    assert result["images"] == 16 and result["patients"] == 8
    assert result["splits"] == {"train": 10, "val": 4, "test": 2}
    assert "clear" in json.dumps(result) and "lesion" in json.dumps(result)

    check = runner.invoke(app, ["data", "check", str(odd_csv), *OPTIONS, "--json"])
    assert check.exit_code == 0, check.output
    assert json.loads(check.stdout)["error"] == 0

    out = tmp_path / "splits.csv"
    split = runner.invoke(app, ["data", "split", str(odd_csv), *OPTIONS, "--out", str(out), "--test", "0.25"])
    assert split.exit_code == 0, split.output
    table = pd.read_csv(out)
    subjects = pd.read_csv(odd_csv).set_index("scan")["subject"]
    assert table.groupby(table["image"].map(subjects))["split"].nunique().eq(1).all()  # grouped by patient_column


def test_option_the_format_does_not_take_is_refused(odd_csv: Path) -> None:
    result = runner.invoke(app, ["data", "summary", str(odd_csv), "--image-column", "scan", "--patient-pattern", "x"])
    assert result.exit_code == 2
    assert "no dataset format takes all of the options" in result.stderr and "class_folder" in result.stderr


@pytest.mark.slow
def test_train_reads_the_options_from_flags_and_yaml(odd_csv: Path, tmp_path: Path) -> None:
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    config = tmp_path / "run.yaml"
    config.write_text(
        "task: classify\nmodel: tiny_cnn\nepochs: 1\nimage_size: 32\nbatch_size: 8\n"
        "image_column: scan\nlabel_column: diagnosis\nsplit_column: cohort\n"
    )
    out = tmp_path / "run"
    result = runner.invoke(
        app, ["train", str(config), "--data", str(odd_csv), "--patient-column", "subject", "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    saved = TrainConfig.load(out / "config.yaml")
    assert (saved.image_column, saved.label_column, saved.patient_column) == ("scan", "diagnosis", "subject")
    manifest = pd.read_csv(out / "manifest.csv")
    assert set(manifest["label"]) == {"clear", "lesion"}
    assert manifest["patient_id"].nunique() == 8


def test_train_data_folder_with_manifest_uses_its_labels(tmp_path: Path) -> None:
    # `train --data FOLDER` on what `osteon data phantom` writes: before, classes "images" and "masks" (D2).
    from osteon.data.phantom import make_phantom_dataset
    from osteon.engine.prepare import load_manifest

    make_phantom_dataset(tmp_path, images=8, size=32, seed=0)
    manifest = load_manifest(TrainConfig(task="classify", data=str(tmp_path)))
    assert set(manifest.frame["label"]) <= {"fractured", "normal"} and len(manifest) == 8


def test_load_manifest_passes_the_config_options(odd_csv: Path) -> None:
    from osteon.engine.prepare import load_manifest

    cfg = TrainConfig(task="classify", data=str(odd_csv), image_column="scan", label_column="diagnosis")
    manifest = load_manifest(cfg)
    assert set(manifest.frame["label"]) == {"clear", "lesion"} and len(manifest) == 16
