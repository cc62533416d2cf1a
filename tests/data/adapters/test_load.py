"""load_dataset: the registry, detection order, explicit formats and option validation."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest

import osteon.data
from osteon.data.adapters import ADAPTERS, DETECTION_ORDER, detect_format, load_dataset
from osteon.errors import ConfigError, DatasetFormatError, UnknownNameError

pytestmark = pytest.mark.filterwarnings("ignore::osteon.data.manifest.MissingPatientIdWarning")


def test_registry_and_order_agree() -> None:
    assert (
        set(ADAPTERS.names())
        == {a.name for a in DETECTION_ORDER}
        == {"manifest", "fracatlas", "coco", "yolo", "voc", "class_folder", "dicom_dir", "csv"}
    )
    assert len(DETECTION_ORDER) == len(ADAPTERS)
    assert osteon.data.load_dataset is load_dataset


@pytest.mark.parametrize("name", ADAPTERS.names())
def test_every_adapter_takes_only_keyword_options(name: str, tmp_path: Path) -> None:
    adapter = ADAPTERS.get(name)
    parameters = list(inspect.signature(adapter.load).parameters.values())
    assert parameters[0].name == "path"
    assert all(p.kind is inspect.Parameter.KEYWORD_ONLY for p in parameters[1:])
    assert adapter.detect(tmp_path / "does-not-exist") is False
    assert adapter.layout


@pytest.mark.parametrize(
    ("fixture", "expected"),
    [
        ("coco_dataset", "coco"),
        ("yolo_dataset", "yolo"),
        ("class_folder_dataset", "class_folder"),
        ("dicom_tree", "dicom_dir"),
        ("mini_fracatlas", "fracatlas"),
    ],
)
def test_detection(fixture: str, expected: str, request: pytest.FixtureRequest) -> None:
    path = request.getfixturevalue(fixture)
    assert detect_format(path) == expected


def test_detection_of_files(tmp_path: Path, coco_dataset: Path) -> None:
    assert detect_format(coco_dataset / "annotations" / "instances.json") == "coco"
    (tmp_path / "list.csv").write_text("filepath,label\na.png,x\n")
    assert detect_format(tmp_path / "list.csv") == "csv"
    (tmp_path / "saved.csv").write_text("image,label\na.png,x\n")
    assert detect_format(tmp_path / "saved.csv") == "manifest"


def test_class_folders_of_dicom_files_are_class_folders(tmp_path: Path, dicom_writer: Callable[..., Path]) -> None:
    for label in ("normal", "dysplasia"):
        dicom_writer(tmp_path / label / "a.dcm", PatientID=f"P-{label}")
    assert detect_format(tmp_path) == "class_folder"  # class_folder is tried before dicom_dir
    assert load_dataset(tmp_path, format="dicom_dir").frame["patient_id"].tolist() == ["P-dysplasia", "P-normal"]


@pytest.mark.shared_data
@pytest.mark.parametrize(
    ("folder", "expected"),
    [
        ("fracatlas", "fracatlas"),
        ("knee_kl_chen2018", "class_folder"),
        ("ddh_pelvis_xray_dicom", "dicom_dir"),
        ("knee_kl_chen2018/MANIFEST.csv", "csv"),
    ],
)
def test_detection_on_shared_data(shared_data: Path, folder: str, expected: str) -> None:
    assert detect_format(shared_data / folder) == expected


def test_undetectable_lists_formats(tmp_path: Path) -> None:
    (tmp_path / "readme.txt").write_text("hello")
    with pytest.raises(DatasetFormatError, match="cannot tell the dataset format") as info:
        load_dataset(tmp_path)
    message = str(info.value)
    assert all(f"  {name}: " in message for name in ADAPTERS.names())
    assert "--format NAME" in message


def test_missing_path(tmp_path: Path) -> None:
    with pytest.raises(DatasetFormatError, match="no such file or folder"):
        load_dataset(tmp_path / "nope")


def test_unknown_format(class_folder_dataset: Path) -> None:
    with pytest.raises(UnknownNameError, match=r"Unknown dataset format 'class_folders'.*Did you mean: class_folder"):
        load_dataset(class_folder_dataset, format="class_folders")


def test_format_spelling_and_none_options(class_folder_dataset: Path) -> None:
    manifest = load_dataset(class_folder_dataset, format="Class-Folder", patient_pattern=None, images=None)
    assert len(manifest) == 5 and manifest.frame["patient_id"].nunique() == 3


def test_unknown_option(class_folder_dataset: Path) -> None:
    with pytest.raises(ConfigError, match=r"no option 'patient_regex'.*Did you mean patient_pattern"):
        load_dataset(class_folder_dataset, patient_regex="x")


def test_unknown_option_lists_the_accepted_ones(dicom_tree: Path) -> None:
    with pytest.raises(ConfigError, match=r"'dicom_dir' has no option 'per_study'.*It takes: per_series"):
        load_dataset(dicom_tree, per_study=True)


def test_options_choose_among_the_formats_that_take_them(tmp_path: Path) -> None:
    # An 'image' column makes the CSV look like a saved Manifest, which takes no options; the option picks csv.
    pd.DataFrame({"image": ["a.png", "b.png"], "diagnosis": ["x", "y"], "subject": ["1", "2"]}).to_csv(
        tmp_path / "t.csv", index=False
    )
    assert detect_format(tmp_path / "t.csv") == "manifest"
    manifest = load_dataset(tmp_path / "t.csv", label_column="diagnosis", patient_column="subject")
    assert manifest.frame["label"].tolist() == ["x", "y"] and manifest.frame["patient_id"].tolist() == ["1", "2"]


def test_options_no_format_takes_together(class_folder_dataset: Path) -> None:
    with pytest.raises(ConfigError, match=r"no dataset format takes all .*image_column: csv"):
        load_dataset(class_folder_dataset, image_column="x", patient_pattern="(?P<patient_id>.)")
