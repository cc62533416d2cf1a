"""Folders that hold their own Manifest, empty class folders and paths outside the dataset root (issue #10, D2)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from tests.data.adapters.conftest import make_image

from osteon.data.adapters import detect_format, load_dataset, manifest_file
from osteon.data.manifest import Manifest, PathOutsideRootWarning
from osteon.data.phantom import make_phantom_dataset
from osteon.errors import DatasetFormatError

pytestmark = pytest.mark.filterwarnings("ignore::osteon.data.manifest.MissingPatientIdWarning")


@pytest.fixture(scope="module")
def phantom_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """What `osteon data phantom` writes: manifest.csv beside images/ and masks/."""
    out = tmp_path_factory.mktemp("phantom")
    make_phantom_dataset(out, images=8, size=32, seed=0)
    return out


def test_folder_with_manifest_csv_loads_that_manifest(phantom_folder: Path) -> None:
    # Before the fix the folder was detected as class folders "images" and "masks".
    assert detect_format(phantom_folder) == "manifest"
    assert manifest_file.detect(phantom_folder)
    manifest = load_dataset(phantom_folder)
    from_file = load_dataset(phantom_folder / "manifest.csv")
    assert set(manifest.frame["label"]) <= {"fractured", "normal"}
    assert not {"images", "masks"} & set(manifest.frame["label"])
    pd.testing.assert_frame_equal(manifest.frame, from_file.frame)
    assert manifest.paths() == from_file.paths()
    assert manifest.name == phantom_folder.resolve().name


def test_folder_manifest_wins_over_class_folders(tmp_path: Path) -> None:
    for label in ("a", "b"):
        make_image(tmp_path / label / "x.png")
    assert detect_format(tmp_path) == "class_folder"
    pd.DataFrame({"image": ["a/x.png", "b/x.png"], "label": ["cat", "dog"]}).to_csv(
        tmp_path / "manifest.csv", index=False
    )
    manifest = load_dataset(tmp_path)
    assert manifest.frame["label"].tolist() == ["cat", "dog"]
    assert load_dataset(tmp_path, format="class_folder").frame["label"].tolist() == ["a", "b"]


def test_folder_without_manifest_is_not_a_manifest(tmp_path: Path) -> None:
    (tmp_path / "manifest.csv").write_text("path,label\na.png,x\n")  # no 'image' column: not a Manifest
    assert not manifest_file.detect(tmp_path)
    with pytest.raises(DatasetFormatError, match=r"manifest\.csv"):
        manifest_file.load(tmp_path)


def test_empty_class_folder_is_named_in_a_warning(tmp_path: Path) -> None:
    for label in ("0", "1"):
        make_image(tmp_path / "train" / label / f"{label}.png")
    (tmp_path / "train" / "2").mkdir()
    with pytest.warns(UserWarning, match=r"class folder\(s\) hold no images .*train/2"):
        manifest = load_dataset(tmp_path)
    assert sorted(manifest.frame["label"]) == ["0", "1"]


def test_no_warning_without_empty_class_folder(tmp_path: Path) -> None:
    for label in ("0", "1"):
        make_image(tmp_path / label / f"{label}.png")
    import warnings

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        load_dataset(tmp_path)
    assert not [w for w in caught if "hold no images" in str(w.message)]


def test_paths_outside_root_are_warned_naming_the_rows(tmp_path: Path) -> None:
    root = tmp_path / "data"
    make_image(root / "a.png")
    make_image(tmp_path / "elsewhere" / "b.png")
    pd.DataFrame({"image": ["a.png", "../elsewhere/b.png", "sub/../a.png"], "patient_id": ["1", "2", "3"]}).to_csv(
        root / "manifest.csv", index=False
    )
    with pytest.warns(PathOutsideRootWarning, match=r"1 row\(s\) .*row 1: \.\./elsewhere/b\.png"):
        manifest = load_dataset(root / "manifest.csv")
    assert manifest.rows_outside_root() == [1]


def test_mask_outside_root_counts(tmp_path: Path) -> None:
    frame = pd.DataFrame({"image": ["a.png", str(tmp_path / "abs.png")], "mask": ["../m.png", pd.NA]})
    manifest = Manifest(frame, root=tmp_path, name="t")
    assert manifest.rows_outside_root() == [0]  # absolute paths are deliberate, not counted
