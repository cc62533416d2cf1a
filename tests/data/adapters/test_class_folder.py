"""class_folder adapter: the knee KL crops (checked against the dataset's own MANIFEST.csv) and synthetic layouts."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest

from osteon.data.adapters import class_folder, load_dataset
from osteon.data.manifest import MissingPatientIdWarning
from osteon.errors import ConfigError, DatasetFormatError


@pytest.mark.shared_data
def test_knee_kl_matches_provenance_and_manifest(shared_data: Path) -> None:
    root = shared_data / "knee_kl_chen2018"
    manifest = load_dataset(root)
    frame = manifest.frame
    assert len(frame) == 967
    assert frame["split"].value_counts().to_dict() == {"train": 600, "val": 125, "test": 242}
    per_grade = frame.groupby(["split", "label"]).size()
    assert all(per_grade["train"] == 120) and all(per_grade["val"] == 25)
    assert per_grade["test"].to_dict() == {"0": 50, "1": 50, "2": 50, "3": 50, "4": 42}
    # Patient ids and sides from the dataset's own MANIFEST.csv (written by whoever prepared the data).
    truth = pd.read_csv(root / "MANIFEST.csv", dtype=str).set_index("path")
    got = frame.set_index("image")
    assert set(got.index) == set(truth.index)
    assert (got["patient_id"] == truth.loc[got.index, "patient_id"]).all()
    assert (got["laterality"] == truth.loc[got.index, "side"]).all()
    assert (got["label"] == truth.loc[got.index, "kl_grade"]).all()
    assert got["patient_id"].nunique() == truth["patient_id"].nunique()
    assert all(p.is_file() for p in manifest.paths()[:20])


def test_split_layout_with_auto_patient_ids(class_folder_dataset: Path) -> None:
    assert class_folder.detect(class_folder_dataset)
    frame = class_folder.load(class_folder_dataset).frame
    assert len(frame) == 5
    assert frame["split"].value_counts().to_dict() == {"train": 3, "val": 2}  # "valid" → "val"
    assert frame.groupby("label").size().to_dict() == {"0": 3, "1": 2}
    row = frame.set_index("image").loc["train/0/1000001R.png"]
    assert (row["patient_id"], row["laterality"], row["label"]) == ("1000001", "R", "0")
    assert frame["patient_id"].nunique() == 3


def test_flat_layout_without_patient_ids(tmp_path: Path, image_writer: Callable[..., Path]) -> None:
    for label, stems in {"normal": ["a", "b"], "fracture": ["c"]}.items():
        for stem in stems:
            image_writer(tmp_path / label / f"{stem}.jpg")
    with pytest.warns(MissingPatientIdWarning):
        frame = load_dataset(tmp_path, format="class_folder").frame
    assert sorted(frame["image"]) == ["fracture/c.jpg", "normal/a.jpg", "normal/b.jpg"]
    assert frame["split"].isna().all()
    assert "patient_id" not in frame


def test_auto_pattern_needs_every_stem(class_folder_dataset: Path, image_writer: Callable[..., Path]) -> None:
    image_writer(class_folder_dataset / "train" / "1" / "scan_9.png")
    with pytest.warns(MissingPatientIdWarning):
        frame = class_folder.load(class_folder_dataset).frame
    assert "patient_id" not in frame and len(frame) == 6


def test_explicit_pattern(tmp_path: Path, image_writer: Callable[..., Path]) -> None:
    for stem in ["p01_left", "p01_right", "p02_left"]:
        image_writer(tmp_path / ("a" if stem != "p02_left" else "b") / f"{stem}.png")
    frame = load_dataset(tmp_path, patient_pattern=r"^(?P<patient_id>p\d+)_").frame
    assert frame.set_index("image")["patient_id"].to_dict() == {
        "a/p01_left.png": "p01",
        "a/p01_right.png": "p01",
        "b/p02_left.png": "p02",
    }
    with pytest.raises(DatasetFormatError, match=r"p02_left.*does not match"):
        load_dataset(tmp_path, patient_pattern=r"^(?P<patient_id>p01)_")


@pytest.mark.parametrize(
    ("pattern", "message"), [(r"^(\d+)", "no named group 'patient_id'"), ("(?P<patient_id", "not a valid")]
)
def test_bad_pattern(class_folder_dataset: Path, pattern: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        class_folder.load(class_folder_dataset, patient_pattern=pattern)


@pytest.mark.filterwarnings("ignore::osteon.data.manifest.MissingPatientIdWarning")
def test_stray_images_warned_and_dicom_class_folders(tmp_path: Path, image_writer: Callable[..., Path]) -> None:
    for label in ("0", "1"):
        (tmp_path / label).mkdir()
        (tmp_path / label / "x.dcm").write_bytes(b"")
    image_writer(tmp_path / "0" / "deeper" / "lost.png")
    with pytest.warns(UserWarning, match=r"1 image file\(s\) outside.*0/deeper/lost\.png"):
        frame = class_folder.load(tmp_path).frame
    assert sorted(frame["image"]) == ["0/x.dcm", "1/x.dcm"]


def test_not_a_class_folder(tmp_path: Path, image_writer: Callable[..., Path]) -> None:
    image_writer(tmp_path / "only_one_class" / "a.png")
    assert not class_folder.detect(tmp_path)
    (tmp_path / "only_one_class" / "a.png").unlink()
    with pytest.raises(DatasetFormatError, match="no class folders"):
        class_folder.load(tmp_path)
