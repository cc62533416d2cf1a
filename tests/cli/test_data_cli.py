"""``osteon data summary|check|split|phantom`` through Typer's test runner."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from osteon.cli.main import app

runner = CliRunner()


@pytest.fixture(scope="module")
def phantom(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small phantom dataset written by the CLI itself; returns its manifest.csv."""
    out = tmp_path_factory.mktemp("phantom")
    result = runner.invoke(app, ["data", "phantom", "--out", str(out), "--images", "24", "--size", "48", "--seed", "1"])
    assert result.exit_code == 0, result.output
    return out / "manifest.csv"


def _one_error_line(result: object) -> str:
    lines = [line for line in result.stderr.splitlines() if line.strip()]  # type: ignore[attr-defined]
    assert len(lines) == 1, result.stderr  # type: ignore[attr-defined]
    assert lines[0].startswith("Error:") and "Traceback" not in result.output  # type: ignore[attr-defined]
    return lines[0]


def test_summary_json_parses(phantom: Path) -> None:
    result = runner.invoke(app, ["data", "summary", str(phantom), "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["images"] == 24 and summary["patients"] == 12
    assert sum(summary["splits"].values()) == 24
    assert summary["annotations"]["masks"] == 12


def test_summary_table(phantom: Path) -> None:
    result = runner.invoke(app, ["data", "summary", str(phantom)])
    assert result.exit_code == 0
    assert "fractured" in result.stdout and "Covariate coverage" in result.stdout


def test_check_clean_dataset_exits_0(phantom: Path) -> None:
    result = runner.invoke(app, ["data", "check", str(phantom), "--json"])
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert payload["images"] == 24 and payload["error"] == 0 and payload["findings"] == []


def test_check_with_errors_exits_1(phantom: Path, tmp_path: Path) -> None:
    frame = pd.read_csv(phantom)
    frame["image"] = [str(phantom.parent / p) for p in frame["image"]]
    frame["mask"] = [str(phantom.parent / p) if isinstance(p, str) else p for p in frame["mask"]]
    first_patient = frame["patient_id"] == frame["patient_id"].iloc[0]
    frame.loc[first_patient, "split"] = ["train", "test"]  # one patient on both sides
    frame.to_csv(tmp_path / "leaky.csv", index=False)
    result = runner.invoke(app, ["data", "check", str(tmp_path / "leaky.csv"), "--json", "--no-decode"])
    assert result.exit_code == 1, result.output
    codes = [f["code"] for f in json.loads(result.stdout)["findings"]]
    assert codes == ["patient_in_two_splits"]
    table = runner.invoke(app, ["data", "check", str(tmp_path / "leaky.csv")])
    assert table.exit_code == 1 and "patient_in_two_splits" in table.stdout


def test_split_writes_and_refuses_to_overwrite(phantom: Path, tmp_path: Path) -> None:
    out = tmp_path / "splits.csv"
    result = runner.invoke(app, ["data", "split", str(phantom), "--out", str(out), "--seed", "3"])
    assert result.exit_code == 0, result.output
    table = pd.read_csv(out)
    assert len(table) == 24 and set(table["split"]) == {"train", "val", "test"}
    manifest = pd.read_csv(phantom)
    patients = manifest.set_index("image")["patient_id"]
    assert table.groupby(table["image"].map(patients))["split"].nunique().eq(1).all()
    before = out.read_bytes()
    again = runner.invoke(app, ["data", "split", str(phantom), "--out", str(out), "--seed", "4"])
    assert again.exit_code == 2
    assert "--overwrite" in _one_error_line(again)
    assert out.read_bytes() == before
    forced = runner.invoke(app, ["data", "split", str(phantom), "--out", str(out), "--seed", "4", "--overwrite"])
    assert forced.exit_code == 0, forced.output


def test_split_folds(phantom: Path, tmp_path: Path) -> None:
    out = tmp_path / "folds.csv"
    result = runner.invoke(app, ["data", "split", str(phantom), "--out", str(out), "--folds", "3", "--test", "0.2"])
    assert result.exit_code == 0, result.output
    table = pd.read_csv(out)
    assert set(table["split"]) == {"train", "test"}
    assert table.loc[table["split"] == "test", "fold"].isna().all()
    assert sorted(table.loc[table["split"] == "train", "fold"].unique()) == [0, 1, 2]


def test_errors_are_one_red_line_with_exit_2(tmp_path: Path) -> None:
    missing = runner.invoke(app, ["data", "summary", str(tmp_path / "nowhere")])
    assert missing.exit_code == 2
    assert "nowhere" in _one_error_line(missing)
    bad_stratify = runner.invoke(
        app, ["data", "split", str(tmp_path / "nowhere"), "--out", str(tmp_path / "s.csv"), "--stratify", "label"]
    )
    assert bad_stratify.exit_code == 2
    assert not (tmp_path / "s.csv").exists()


def test_phantom_refuses_to_overwrite(phantom: Path) -> None:
    result = runner.invoke(app, ["data", "phantom", "--out", str(phantom.parent), "--images", "4"])
    assert result.exit_code == 2
    assert "exists" in _one_error_line(result)


def test_folder_with_manifest_csv_shows_its_labels_not_images_and_masks(phantom: Path) -> None:
    # `osteon data phantom` writes manifest.csv beside images/ and masks/: the folder is that Manifest,
    # not two class folders named "images" and "masks" (issue #10, D2).
    for command in ("summary", "check"):
        result = runner.invoke(app, ["data", command, str(phantom.parent), "--json"])
        assert result.exit_code == 0, result.output
        payload = json.loads(result.stdout)
        assert payload["images"] == 24
    summary = json.loads(runner.invoke(app, ["data", "summary", str(phantom.parent), "--json"]).stdout)
    labels = {label for per_split in summary["labels"].values() for label in per_split}
    assert summary["patients"] == 12
    assert labels == {"fractured", "normal"}  # before the fix: {"images", "masks"}
