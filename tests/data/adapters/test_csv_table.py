"""csv adapter: image column choice, renames, text ids, split aliases, images_root and bad options."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from osteon.data.adapters import csv_table, load_dataset
from osteon.errors import ConfigError, DatasetFormatError


@pytest.fixture
def table(tmp_path: Path) -> Path:
    path = tmp_path / "meta" / "labels.csv"
    path.parent.mkdir()
    pd.DataFrame(
        {
            "FilePath": ["x/1.png", "x/2.png", "y/3.png"],
            "grade": [0, 3, 4],
            "subject": ["00123", "00123", "0456"],
            "bone_age": [10.5, 11.0, 3.25],
            "fold": ["Train", "valid", "test"],
            "sex": ["F", "F", "M"],
        }
    ).to_csv(path, index=False)
    return path


def test_columns_renamed_and_typed(table: Path) -> None:
    assert csv_table.detect(table)
    manifest = load_dataset(
        table, label_column="grade", patient_column="subject", target_column="bone_age", split_column="fold"
    )
    frame = manifest.frame
    assert list(frame.columns) == ["image", "label", "patient_id", "target", "split", "sex"]
    assert frame["image"].tolist() == ["x/1.png", "x/2.png", "y/3.png"]
    assert frame["patient_id"].tolist() == ["00123", "00123", "0456"]  # leading zeros kept
    assert frame["label"].tolist() == ["0", "3", "4"]
    assert frame["target"].tolist() == [10.5, 11.0, 3.25]
    assert frame["split"].tolist() == ["train", "val", "test"]
    assert manifest.root == table.parent and manifest.paths()[0] == table.parent / "x" / "1.png"


def test_images_root_and_explicit_image_column(table: Path) -> None:
    manifest = load_dataset(table, image_column="FilePath", images_root="../images", patient_column="subject")
    assert manifest.paths()[2] == (table.parent / ".." / "images" / "y" / "3.png").resolve()


def test_tsv(tmp_path: Path) -> None:
    path = tmp_path / "list.tsv"
    path.write_text("filename\tlabel\na.png\tfracture\nb.png\tnormal\n")
    assert csv_table.detect(path)
    with pytest.warns(UserWarning, match="no patient ids"):
        frame = load_dataset(path).frame
    assert frame["image"].tolist() == ["a.png", "b.png"] and frame["label"].tolist() == ["fracture", "normal"]


@pytest.mark.parametrize(
    ("options", "error", "message"),
    [
        ({"label_column": "kl"}, ConfigError, r"column 'kl' \(for 'label'\) not found"),
        ({"image_column": "nope"}, ConfigError, r"column 'nope' \(for 'image'\) not found"),
        (
            {"patient_column": "sex", "label_column": "grade", "target_column": "sex"},
            ConfigError,
            "'sex' is given for both",
        ),
    ],
)
def test_bad_options(table: Path, options: dict[str, str], error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=message):
        load_dataset(table, **options)


def test_rename_would_overwrite(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_text("path,label,grade,patient_id\na.png,x,1,p1\n")
    with pytest.raises(ConfigError, match="would overwrite the existing column 'label'"):
        load_dataset(path, label_column="grade")
    assert load_dataset(path, label_column="label").frame["label"].tolist() == ["x"]


def test_no_image_column_and_bad_split(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_text("name,label\na.png,x\n")
    assert not csv_table.detect(path)
    with pytest.raises(DatasetFormatError, match=r"t\.csv: no image-path column.*image_column"):
        load_dataset(path, format="csv")
    bad = tmp_path / "s.csv"
    bad.write_text("path,split,patient_id\na.png,holdout,p1\n")
    with pytest.raises(DatasetFormatError, match=r"split values \['holdout'\]"):
        load_dataset(bad)


@pytest.mark.shared_data
def test_knee_manifest_csv(shared_data: Path) -> None:
    path = shared_data / "knee_kl_chen2018" / "MANIFEST.csv"
    manifest = load_dataset(path, label_column="kl_grade")
    assert len(manifest) == 967
    assert manifest.frame["split"].value_counts().to_dict() == {"train": 600, "val": 125, "test": 242}
    assert manifest.frame["patient_id"].str.fullmatch(r"\d{7}").all()
    assert all(p.is_file() for p in manifest.paths()[:10])


def test_image_template(tmp_path: Path) -> None:
    path = tmp_path / "meta.csv"
    path.write_text("stem,patient,label\n007_a,007,x\n008_b,008,y\n")
    assert not csv_table.detect(path)  # no path column: the template is needed
    manifest = load_dataset(path, format="csv", image_template="png/{stem}_{patient}.png", patient_column="patient")
    assert manifest.frame["image"].tolist() == ["png/007_a_007.png", "png/008_b_008.png"]  # zeros kept
    assert manifest.frame["patient_id"].tolist() == ["007", "008"]


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"image_template": "png/{nope}.png"}, r"unknown: \['nope'\]"),
        ({"image_template": "png/fixed.png"}, "must name CSV columns"),
        ({"image_template": "png/{stem.png"}, "not a valid format string"),
        ({"image_template": "png/{stem}.png", "image_column": "stem"}, "pass no image_column"),
    ],
)
def test_bad_image_template(tmp_path: Path, options: dict[str, str], message: str) -> None:
    path = tmp_path / "meta.csv"
    path.write_text("stem,label\na,x\n")
    with pytest.raises(ConfigError, match=message):
        load_dataset(path, format="csv", **options)


@pytest.mark.shared_data
def test_grazpedwri_dataset_csv(shared_data: Path) -> None:
    path = shared_data / "grazpedwri_dx_sample" / "dataset.csv"  # UTF-8 BOM and CRLF, as in the original
    manifest = load_dataset(path, format="csv", image_template="images/{filestem}.png", target_column="age")
    assert len(manifest) == 9 and all(p.is_file() for p in manifest.paths())
    assert set(manifest.frame["filestem"]) == {p.stem for p in (path.parent / "images").glob("*.png")}
    assert manifest.frame["patient_id"].str.fullmatch(r"\d+").all()
    assert manifest.frame["target"].between(0.2, 19.0).all()
