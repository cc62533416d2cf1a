"""manifest format: a Manifest saved with Manifest.save comes back through load_dataset unchanged."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from osteon.data.adapters import detect_format, load_dataset, manifest_file
from osteon.errors import DatasetFormatError


def test_round_trip_keeps_rows(coco_dataset: Path, tmp_path_factory: pytest.TempPathFactory) -> None:
    with pytest.warns(UserWarning, match="no patient ids"):
        original = load_dataset(coco_dataset)
        saved = original.save(tmp_path_factory.mktemp("out") / "manifest.csv")
        assert detect_format(saved) == "manifest" and manifest_file.detect(saved)
        loaded = load_dataset(saved)
    assert len(loaded) == len(original) == 3
    assert [p.resolve() for p in loaded.paths()] == [p.resolve() for p in original.paths()]
    assert all(p.is_file() for p in loaded.paths())
    for column in ("label", "boxes", "polygons"):
        assert loaded.frame[column].fillna("").tolist() == original.frame[column].fillna("").tolist()
    assert [loaded.boxes(i) for i in range(3)] == [original.boxes(i) for i in range(3)]


@pytest.mark.shared_data
def test_round_trip_fracatlas(shared_data: Path, tmp_path: Path) -> None:
    with pytest.warns(UserWarning):
        original = load_dataset(shared_data / "fracatlas")
        loaded = load_dataset(original.save(tmp_path / "fracatlas.csv"))
    assert len(loaded) == 974
    assert [p.resolve() for p in loaded.paths()] == [p.resolve() for p in original.paths()]
    pd.testing.assert_series_equal(loaded.frame["split"], original.frame["split"], check_dtype=False)
    assert sum(len(loaded.boxes(i)) for i in range(len(loaded))) == 778


def test_not_a_manifest(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_text("path,label\na.png,x\n")
    assert not manifest_file.detect(path)
    with pytest.raises(DatasetFormatError, match="not a Manifest file"):
        manifest_file.load(tmp_path)
