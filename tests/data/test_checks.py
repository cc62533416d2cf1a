"""``check_dataset`` finds each planted defect, with the right code, severity and file."""

from __future__ import annotations

import io
import json
import re
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image as PILImage

from osteon.data.checks import CODES, Finding, check_dataset, has_errors, image_size
from osteon.data.manifest import Manifest


def _png(path: Path, seed: int, *, size: tuple[int, int] = (48, 40)) -> None:
    """A noise PNG of ``size`` (width, height); distinct seeds give distinct bytes."""
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    PILImage.fromarray(rng.integers(0, 256, (size[1], size[0]), dtype=np.uint8)).save(path)


def _clean(root: Path, n: int = 6) -> pd.DataFrame:
    """A defect-free table: one image per patient, all in train, with a box inside each image."""
    for i in range(n):
        _png(root / f"img/{i}.png", i)
    return pd.DataFrame(
        {
            "image": [f"img/{i}.png" for i in range(n)],
            "patient_id": [f"P{i}" for i in range(n)],
            "split": ["train"] * n,
            "label": ["a", "b"] * (n // 2),
            "boxes": [json.dumps([{"xyxy": [1, 2, 30, 20], "label": "x"}])] * n,
        }
    )


def _check(frame: pd.DataFrame, root: Path, **kwargs: object) -> list[Finding]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        manifest = Manifest(frame, root=root)
    return check_dataset(manifest, progress=False, **kwargs)  # type: ignore[arg-type]


def _only(findings: list[Finding], code: str) -> list[Finding]:
    return [f for f in findings if f.code == code]


def test_clean_dataset_has_no_findings(tmp_path: Path) -> None:
    assert _check(_clean(tmp_path), tmp_path) == []


def test_truncated_jpeg(tmp_path: Path) -> None:
    frame = _clean(tmp_path)
    rng = np.random.default_rng(0)
    buffer = io.BytesIO()
    PILImage.fromarray(rng.integers(0, 256, (256, 256), dtype=np.uint8)).save(buffer, format="JPEG", quality=95)
    (tmp_path / "img/cut.jpg").write_bytes(buffer.getvalue()[: len(buffer.getvalue()) // 2])
    frame.loc[len(frame)] = ["img/cut.jpg", "P9", "train", "a", "[]"]
    findings = _check(frame, tmp_path)
    [truncated] = _only(findings, "truncated")
    assert truncated.files == ("img/cut.jpg",) and truncated.severity == "error"
    assert "img/cut.jpg" in truncated.message and truncated.fix
    assert not _only(_check(frame, tmp_path, decode=False), "truncated")  # only decoding finds it


def test_truncated_jpeg2000_dicom_is_a_truncated_finding(tmp_path: Path) -> None:
    from tests.io.test_dicom_codecs import _jpeg2000_file

    frame = _clean(tmp_path)
    whole = _jpeg2000_file(tmp_path / "whole.dcm").read_bytes()
    (tmp_path / "img/cut.dcm").write_bytes(whole[: len(whole) // 2])
    frame.loc[len(frame)] = ["img/cut.dcm", "P9", "train", "a", "[]"]
    [truncated] = _only(_check(frame, tmp_path), "truncated")  # before: "unreadable ... has no pixel data"
    assert truncated.files == ("img/cut.dcm",) and "no pixel data" not in truncated.message


def test_unreadable_and_missing_files(tmp_path: Path) -> None:
    frame = _clean(tmp_path)
    (tmp_path / "img/text.png").write_text("not an image")
    frame.loc[len(frame)] = ["img/text.png", "P8", "train", "a", "[]"]
    frame.loc[len(frame)] = ["img/gone.png", "P9", "train", "a", "[]"]
    findings = _check(frame, tmp_path)
    assert [f.files for f in _only(findings, "unreadable")] == [("img/text.png",)]
    assert [f.files for f in _only(findings, "missing_file")] == [("img/gone.png",)]
    assert has_errors(findings)


def test_duplicates_within_and_across_splits(tmp_path: Path) -> None:
    frame = _clean(tmp_path, n=8)
    for name, source in (("img/copy1.png", "img/1.png"), ("img/copy2.png", "img/2.png")):
        (tmp_path / name).write_bytes((tmp_path / source).read_bytes())
    frame.loc[len(frame)] = ["img/copy1.png", "P1b", "train", "a", "[]"]
    frame.loc[len(frame)] = ["img/copy2.png", "P2b", "test", "a", "[]"]
    findings = _check(frame, tmp_path, decode=False)
    [same_split] = _only(findings, "duplicate")
    assert same_split.severity == "warning" and set(same_split.files) == {"img/1.png", "img/copy1.png"}
    [leak] = _only(findings, "duplicate_in_two_splits")
    assert leak.severity == "error" and set(leak.files) == {"img/2.png", "img/copy2.png"}
    assert findings[0].severity == "error"  # errors come first


def test_patient_in_two_splits(tmp_path: Path) -> None:
    frame = _clean(tmp_path)
    frame.loc[3, "patient_id"] = "P0"
    frame.loc[3, "split"] = "val"
    [leak] = _only(_check(frame, tmp_path, decode=False), "patient_in_two_splits")
    assert leak.severity == "error" and set(leak.files) == {"img/0.png", "img/3.png"}
    assert "P0" in leak.message and "train" in leak.message and "val" in leak.message


def test_label_conflict_names_the_winner(tmp_path: Path) -> None:
    frame = _clean(tmp_path)
    frame["label_csv"] = frame["label"]
    frame.loc[2, "label_csv"] = "b" if frame.loc[2, "label"] == "a" else "a"
    [conflict] = _only(_check(frame, tmp_path, decode=False), "label_conflict")
    assert conflict.severity == "warning" and conflict.files == ("img/2.png",)
    assert "'label' won" in conflict.message and "label_csv" in conflict.message


def test_boxes_outside_and_degenerate(tmp_path: Path) -> None:
    frame = _clean(tmp_path)  # images are 48 x 40
    frame.loc[1, "boxes"] = json.dumps([{"xyxy": [10, 10, 60, 20], "label": "x"}])  # x2 > 48
    frame.loc[2, "boxes"] = json.dumps([{"xyxy": [10, 10, 48.5, 40.0000001], "label": "x"}])  # rounding: fine
    frame.loc[3, "boxes"] = json.dumps([{"xyxy": [10, 10, 5, 20], "label": "x"}])  # x2 < x1
    frame.loc[4, "boxes"] = json.dumps([{"xyxy": [1, 2, 3], "label": "x"}])  # not four numbers
    findings = _check(frame, tmp_path, decode=False)  # sizes from the PNG headers
    assert [f.files for f in _only(findings, "box_outside_image")] == [("img/1.png",)]
    assert [f.files for f in _only(findings, "degenerate_box")] == [("img/3.png",), ("img/4.png",)]
    frame["width"], frame["height"] = 100, 100  # the manifest's own sizes win over the headers
    assert not _only(_check(frame, tmp_path, decode=False), "box_outside_image")


def test_polygons_outside_and_degenerate(tmp_path: Path) -> None:
    frame = _clean(tmp_path)
    frame["polygons"] = json.dumps([{"points": [[1, 1], [10, 1], [10, 10]], "label": "x"}])
    frame.loc[0, "polygons"] = json.dumps([{"points": [[1, 1], [10, 1], [10, 45]], "label": "x"}])  # y > 40
    frame.loc[5, "polygons"] = json.dumps([{"points": [[1, 1], [10, 1]], "label": "x"}])
    findings = _check(frame, tmp_path, decode=False)
    assert [f.files for f in _only(findings, "polygon_outside_image")] == [("img/0.png",)]
    assert [f.files for f in _only(findings, "degenerate_polygon")] == [("img/5.png",)]


def test_masks_empty_missing_and_mismatched(tmp_path: Path) -> None:
    frame = _clean(tmp_path)
    masks = tmp_path / "masks"
    masks.mkdir()
    full = np.zeros((40, 48), dtype=np.uint8)
    full[5:9, 5:9] = 1
    PILImage.fromarray(full).save(masks / "ok.png")
    PILImage.fromarray(np.zeros((40, 48), dtype=np.uint8)).save(masks / "empty.png")
    PILImage.fromarray(full[:20]).save(masks / "small.png")
    frame["mask"] = ["masks/ok.png", "masks/empty.png", "masks/small.png", "masks/gone.png", None, None]
    findings = _check(frame, tmp_path)
    [empty] = _only(findings, "empty_mask")
    assert empty.files == ("masks/empty.png",) and empty.severity == "warning"
    [mismatch] = _only(findings, "mask_size_mismatch")
    assert mismatch.files == ("img/2.png", "masks/small.png")
    assert [f.files for f in _only(findings, "missing_file")] == [("masks/gone.png",)]


def test_missing_patient_ids_and_splits(tmp_path: Path) -> None:
    frame = _clean(tmp_path)
    frame["patient_id"] = pd.array([None, None, "P2", "P3", "P4", "P5"], dtype="string")
    frame.loc[5, "split"] = None
    findings = _check(frame, tmp_path, decode=False)
    [no_patient] = _only(findings, "no_patient_id")
    assert no_patient.severity == "warning" and no_patient.files == ("img/0.png", "img/1.png")
    [no_split] = _only(findings, "no_split")
    assert no_split.severity == "info" and no_split.files == ("img/5.png",)
    assert not has_errors(findings)


def test_near_duplicates(tmp_path: Path) -> None:
    frame = _clean(tmp_path)
    coarse = np.random.default_rng(3).integers(0, 256, (8, 8)).astype(np.uint8)
    smooth = np.asarray(
        PILImage.fromarray(coarse).resize((48, 40), PILImage.Resampling.BILINEAR)
    )  # phash-stable content
    PILImage.fromarray(smooth).save(tmp_path / "img/0.png")
    buffer = io.BytesIO()
    PILImage.fromarray(smooth).save(buffer, format="JPEG", quality=85)
    (tmp_path / "img/0_again.jpg").write_bytes(buffer.getvalue())
    frame.loc[len(frame)] = ["img/0_again.jpg", "P9", "test", "a", "[]"]
    assert not _only(_check(frame, tmp_path), "near_duplicate")
    [near] = _only(_check(frame, tmp_path, near_duplicates=True), "near_duplicate")
    assert set(near.files) == {"img/0.png", "img/0_again.jpg"} and "different splits" in near.message


def test_every_code_has_a_known_severity_and_findings_serialise(tmp_path: Path) -> None:
    frame = _clean(tmp_path)
    frame.loc[3, "split"] = "val"
    frame.loc[3, "patient_id"] = "P0"
    findings = _check(frame, tmp_path, decode=False)
    assert findings
    for f in findings:
        assert CODES[f.code] == f.severity
        assert json.loads(json.dumps(f.to_dict()))["files"] == list(f.files)


def test_image_size_reads_headers(tmp_path: Path) -> None:
    _png(tmp_path / "a.png", 0, size=(31, 17))
    assert image_size(tmp_path / "a.png") == (31, 17)
    (tmp_path / "b.png").write_text("nope")
    assert image_size(tmp_path / "b.png") is None


# -- real data --------------------------------------------------------------------------------------------
FRACATLAS_DUPLICATES = [  # PROVENANCE.md, "Defects noticed" 2: the groups present in this subset
    {"IMG0000261", "IMG0002299", "IMG0002300"},
    {"IMG0001763", "IMG0002615"},
    {"IMG0002298", "IMG0002379"},
    {"IMG0000006", "IMG0002294"},
    {"IMG0004310", "IMG0004346"},
]


@pytest.mark.shared_data
def test_fracatlas_duplicates_and_label_conflict(shared_data: Path) -> None:
    from osteon.data.adapters import load_dataset

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        manifest = load_dataset(shared_data / "fracatlas")
    findings = check_dataset(manifest, decode=True, progress=False)  # ~4 s: JPEGs decoded in draft mode
    groups = [f for f in findings if f.code in ("duplicate", "duplicate_in_two_splits")]
    found = [{re.sub(r"\.jpg$", "", Path(p).name) for p in f.files} for f in groups]
    assert sorted(found, key=sorted) == sorted(FRACATLAS_DUPLICATES, key=sorted)
    conflicts = _only(findings, "label_conflict")
    assert [Path(f.files[0]).name for f in conflicts] == ["IMG0003298.jpg"]
    assert not has_errors(findings)  # the 59 truncated JPEGs were left out of this subset
    assert _only(findings, "no_patient_id")[0].files == tuple(manifest.frame["image"])
