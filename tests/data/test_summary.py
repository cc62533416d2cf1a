"""``summarize`` counts what is in a Manifest; ``print_summary`` shows it."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from rich.console import Console

from osteon.data.manifest import Manifest
from osteon.data.summary import print_summary, summarize


def _manifest() -> Manifest:
    box = json.dumps([{"xyxy": [0, 0, 2, 2], "label": "f"}, {"xyxy": [1, 1, 3, 3], "label": "f"}])
    frame = pd.DataFrame(
        {
            "image": ["a/1.png", "a/2.PNG", "b/3.dcm", "b/4.nii.gz", "c/5", "c/6.jpg"],
            "patient_id": pd.array(["p1", "p1", "p2", None, "p3", "p4"], dtype="string"),
            "split": pd.array(["train", "train", "val", "test", None, "train"], dtype="string"),
            "label": pd.array(["fractured", "normal", "normal", "fractured", None, "normal"], dtype="string"),
            "boxes": [box, "[]", None, json.dumps([{"xyxy": [0, 0, 1, 1], "label": "f"}]), None, "[]"],
            "mask": [None, "m/2.png", None, None, None, ""],
            "age": [50, None, 61, 70, None, None],
            "sex": ["F", "M", None, "F", "M", "F"],
        }
    )
    return Manifest(frame, root="/data", name="toy")


def test_counts() -> None:
    s = summarize(_manifest())
    assert s["images"] == 6
    assert s["patients"] == 4 and s["images_without_patient"] == 1
    assert s["splits"] == {"train": 3, "val": 1, "test": 1, "(none)": 1}
    assert s["labels"]["train"] == {"fractured": 1, "normal": 2}
    assert s["labels"]["(none)"] == {"(missing)": 1}
    assert s["annotations"] == {
        "boxes": 3,
        "images_with_boxes": 2,
        "polygons": 0,
        "images_with_polygons": 0,
        "masks": 1,
    }
    assert s["covariates"] == {"age": 0.5, "sex": pytest.approx(5 / 6, abs=1e-4)}
    assert s["formats"] == {"": 1, ".dcm": 1, ".jpg": 1, ".nii.gz": 1, ".png": 2}


def test_summary_is_json_and_rendered() -> None:
    s = summarize(_manifest())
    assert json.loads(json.dumps(s)) == s
    console = Console(record=True, width=120)
    print_summary(s, console)
    text = console.export_text()
    assert "toy" in text and "fractured" in text and "Covariate coverage" in text and ".nii.gz: 1" in text


def test_minimal_manifest() -> None:
    manifest = Manifest(pd.DataFrame({"image": ["x.png"], "patient_id": ["p"]}), root=".")
    s = summarize(manifest)
    assert s["splits"] == {"(none)": 1} and s["labels"] == {} and s["covariates"] == {}
    print_summary(s, Console(record=True))


@pytest.mark.shared_data
def test_knee_counts_match_provenance(shared_data: Path) -> None:
    from osteon.data.adapters import load_dataset

    s = summarize(load_dataset(shared_data / "knee_kl_chen2018"))
    assert s["images"] == 967
    assert s["splits"] == {"train": 600, "val": 125, "test": 242}
    assert s["labels"]["test"]["4"] == 42 and s["labels"]["train"] == {str(g): 120 for g in range(5)}
    assert s["formats"] == {".png": 967}
    # patient counts, computed independently from the dataset's own MANIFEST.csv
    shipped = pd.read_csv(shared_data / "knee_kl_chen2018" / "MANIFEST.csv", dtype={"patient_id": str})
    shipped = shipped[shipped["path"].str.endswith(".png")]
    assert s["patients"] == shipped["patient_id"].nunique()
    expected = shipped.groupby("split")["patient_id"].nunique().to_dict()
    assert s["patients_per_split"] == {k: expected[k] for k in ("train", "val", "test")}


@pytest.mark.shared_data
def test_fracatlas_counts_match_provenance(shared_data: Path) -> None:
    from osteon.data.adapters import load_dataset

    s = summarize(load_dataset(shared_data / "fracatlas"))
    assert s["images"] == 974
    assert sum(v.get("fractured", 0) for v in s["labels"].values()) == 608  # folder truth
    assert s["annotations"]["boxes"] == 778
    assert s["patients"] == 0 and s["images_without_patient"] == 974
