"""FracAtlas adapter: the real subset (exact counts from PROVENANCE.md) and a synthetic copy of its quirks."""

from __future__ import annotations

import json
import time
import warnings
from pathlib import Path

import pandas as pd
import pytest

from osteon.data.adapters import fracatlas, load_dataset
from osteon.data.adapters.fracatlas import LabelConflictWarning
from osteon.data.manifest import Manifest, MissingPatientIdWarning
from osteon.errors import DatasetFormatError

pytestmark = pytest.mark.filterwarnings("ignore::osteon.data.manifest.MissingPatientIdWarning")


@pytest.fixture(scope="module")
def real(shared_data: Path) -> tuple[Manifest, list[warnings.WarningMessage], float]:
    start = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        manifest = load_dataset(shared_data / "fracatlas")
    return manifest, caught, time.perf_counter() - start


def _n_boxes(frame: pd.DataFrame) -> int:
    return sum(len(json.loads(b)) for b in frame["boxes"].dropna())


@pytest.mark.shared_data
class TestRealFracAtlas:
    def test_counts_match_provenance(self, real: tuple[Manifest, list, float]) -> None:
        frame = real[0].frame
        assert len(frame) == 974
        assert int(frame["fractured"].sum()) == 608
        assert (frame["label"] == "fractured").sum() == 608
        assert (frame["label"] == "non_fractured").sum() == 366
        assert _n_boxes(frame) == 778

    def test_boxes_match_the_coco_file_independently(
        self, real: tuple[Manifest, list, float], shared_data: Path
    ) -> None:
        manifest = real[0]
        coco = json.loads((shared_data / "fracatlas/Annotations/COCO JSON/COCO_fracture_masks.json").read_text())
        names = {im["id"]: im["file_name"] for im in coco["images"]}
        ann = coco["annotations"][0]
        x, y, w, h = ann["bbox"]
        row = manifest.frame.index[manifest.frame["image"] == f"images/Fractured/{names[ann['image_id']]}"][0]
        xyxy = [b["xyxy"] for b in manifest.boxes(row)]
        assert [x, y, x + w, y + h] in xyxy
        assert {b["label"] for b in manifest.boxes(row)} == {"fractured"}  # category id 0 is a real category
        assert len(manifest.polygons(row)) == sum(a["image_id"] == ann["image_id"] for a in coco["annotations"])
        assert _n_boxes(manifest.frame) == len(coco["annotations"])

    def test_splits(self, real: tuple[Manifest, list, float]) -> None:
        frame = real[0].frame
        assert frame["split"].value_counts().to_dict() == {"train": 481, "val": 73, "test": 54}
        assert frame.loc[frame["label"] == "non_fractured", "split"].isna().all()

    def test_conflict_img0003298_folder_wins(self, real: tuple[Manifest, list, float]) -> None:
        manifest, caught, _ = real
        frame = manifest.frame
        conflicts = frame[frame["label_csv"] != frame["label"]]
        assert list(conflicts["image"]) == ["images/Fractured/IMG0003298.jpg"]
        assert conflicts.iloc[0]["label"] == "fractured" and conflicts.iloc[0]["label_csv"] == "non_fractured"
        assert (frame["label_csv"] == "fractured").sum() == 607  # dataset.csv's count
        messages = [str(w.message) for w in caught if issubclass(w.category, LabelConflictWarning)]
        assert len(messages) == 1 and "IMG0003298" in messages[0] and "folder wins" in messages[0]

    def test_covariates_match_provenance_table(self, real: tuple[Manifest, list, float]) -> None:
        frame = real[0].frame
        table = frame.groupby(["label", "body_part"]).size().unstack().to_dict("index")
        assert table["fractured"] == {"hand": 322, "leg": 180, "hip": 8, "shoulder": 8, "mixed": 90}
        assert table["non_fractured"] == {"hand": 194, "leg": 108, "hip": 5, "shoulder": 5, "mixed": 54}
        assert frame.groupby("label")["hardware"].sum().to_dict() == {"fractured": 84, "non_fractured": 1}
        assert set(frame["view"]) <= {
            "frontal",
            "lateral",
            "oblique",
            "frontal+lateral",
            "frontal+oblique",
            "lateral+oblique",
            "frontal+lateral+oblique",
        }
        assert frame.loc[frame["body_part"] == "mixed", "body_parts"].str.contains("+", regex=False).all()

    def test_sizes_from_coco_only(self, real: tuple[Manifest, list, float]) -> None:
        frame = real[0].frame.set_index("image")
        assert (
            frame["width"].notna().sum() == 608 and frame.loc[frame["label"] == "non_fractured", "width"].isna().all()
        )
        assert (
            frame.at["images/Fractured/IMG0000019.jpg", "width"],
            frame.at["images/Fractured/IMG0000019.jpg", "height"],
        ) == (2304, 2880)

    def test_no_patient_ids_warns_and_paths_resolve(self, real: tuple[Manifest, list, float]) -> None:
        manifest, caught, _ = real
        assert manifest.frame["patient_id"].isna().all()
        assert any(issubclass(w.category, MissingPatientIdWarning) for w in caught)
        assert all(p.is_file() for p in manifest.paths())

    def test_fast_enough(self, real: tuple[Manifest, list, float]) -> None:
        assert real[2] < 3.0


class TestSyntheticFracAtlas:
    def test_rules(self, mini_fracatlas: Path) -> None:
        with pytest.warns(LabelConflictWarning, match=r"F2\.jpg.*folder wins"):
            manifest = load_dataset(mini_fracatlas)
        frame = manifest.frame.set_index("image")
        f1, f2, n1, n2 = (
            f"images/{d}/{n}.jpg"
            for d, n in [("Fractured", "F1"), ("Fractured", "F2"), ("Non_fractured", "N1"), ("Non_fractured", "N2")]
        )
        assert frame.loc[[f1, f2, n1, n2], "label"].tolist() == [
            "fractured",
            "fractured",
            "non_fractured",
            "non_fractured",
        ]
        assert frame.loc[[f1, f2, n1, n2], "fractured"].tolist() == [1, 1, 0, 0]
        assert frame.at[f2, "label_csv"] == "non_fractured"
        assert frame.loc[[f1, f2, n1, n2], "body_part"].tolist() == ["hand", "mixed", "leg", "hip"]
        assert frame.at[f2, "body_parts"] == "hand+shoulder"
        assert frame.loc[[f1, f2, n1], "view"].tolist() == ["frontal", "frontal+lateral", "oblique"]
        assert frame.loc[[f1, f2], "split"].tolist() == ["train", "test"]
        assert frame.loc[[n1, n2], "split"].isna().all()
        assert frame.at[f2, "fracture_count"] == 2 and frame.at[f1, "hardware"] == 1 and frame.at[f2, "multiscan"] == 1
        assert json.loads(frame.at[f1, "boxes"]) == [{"xyxy": [1.25, 2.5, 11.25, 22.5], "label": "fractured"}]
        assert json.loads(frame.at[n1, "boxes"]) == [] and json.loads(frame.at[n1, "polygons"]) == []
        assert len(json.loads(frame.at[f2, "boxes"])) == 2
        assert (frame.at[f2, "width"], frame.at[f2, "height"]) == (240, 320)

    def test_fractured_image_missing_from_coco_has_unknown_boxes(self, mini_fracatlas: Path) -> None:
        (mini_fracatlas / "images" / "Fractured" / "F3.jpg").write_bytes(b"")
        with pytest.warns(LabelConflictWarning):
            frame = fracatlas.load(mini_fracatlas).frame.set_index("image")
        assert pd.isna(frame.at["images/Fractured/F3.jpg", "boxes"])
        assert pd.isna(frame.at["images/Fractured/F3.jpg", "label_csv"])

    def test_explicit_format_on_wrong_folder(self, tmp_path: Path) -> None:
        (tmp_path / "images").mkdir()
        with pytest.raises(DatasetFormatError, match=r"images/Fractured.*images/Non_fractured.*dataset\.csv"):
            load_dataset(tmp_path, format="fracatlas")

    def test_detect(self, mini_fracatlas: Path, tmp_path_factory: pytest.TempPathFactory) -> None:
        assert fracatlas.detect(mini_fracatlas)
        assert not fracatlas.detect(tmp_path_factory.mktemp("empty"))
