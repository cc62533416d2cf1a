"""``osteon predict RUN FOLDER``: DICOMs named by UID are predicted, loops do not abort, skips are counted (D4)."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
from tests.data.adapters.conftest import write_dicom
from typer.testing import CliRunner

from osteon.cli.main import app

runner = CliRunner()


def test_folder_with_uid_named_dicom_and_link_loops(
    trained_classifier: Path, phantom_dataset: Path, tmp_path: Path
) -> None:
    folder = tmp_path / "inbox"
    (folder / "series").mkdir(parents=True)
    for name in ("P0001_L.png", "P0001_R.png"):
        shutil.copy(phantom_dataset.parent / "images" / name, folder / name)
    pixels = np.arange(48 * 48, dtype=np.uint16).reshape(48, 48).tobytes()
    write_dicom(folder / "series" / "1.2.840.113619.2.55.3", Rows=48, Columns=48, PixelData=pixels)
    write_dicom(folder / "series" / "IM0002", Rows=48, Columns=48, PixelData=pixels)
    (folder / "series" / "up").symlink_to(folder, target_is_directory=True)  # loop
    (folder / "readme.txt").write_text("not an image\n")
    explicit_loop = tmp_path / "loop.png"
    explicit_loop.symlink_to(explicit_loop)
    out = tmp_path / "pred.csv"
    result = runner.invoke(
        app, ["predict", str(trained_classifier), str(folder), str(explicit_loop), "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    frame = pd.read_csv(out, keep_default_na=False)
    names = sorted(Path(p).name for p in frame["image"])
    assert names == ["1.2.840.113619.2.55.3", "IM0002", "P0001_L.png", "P0001_R.png"]  # before: the UID one missing
    assert (frame["error"] == "").all()
    assert "4 predicted, 0 unreadable, 3 skipped" in result.stderr
    assert "readme.txt" in result.stderr and "symbolic-link loop" in result.stderr
