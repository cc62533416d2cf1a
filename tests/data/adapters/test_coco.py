"""COCO adapter: xywh → xyxy, polygons, category id 0, image-folder search and bad files."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from osteon.data.adapters import coco, load_dataset
from osteon.errors import DatasetFormatError

pytestmark = pytest.mark.filterwarnings("ignore::osteon.data.manifest.MissingPatientIdWarning")


def _edit(dataset: Path, change: Callable[[dict[str, Any]], object]) -> Path:
    path = dataset / "annotations" / "instances.json"
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data))
    return path


def test_rows_boxes_polygons(coco_dataset: Path) -> None:
    manifest = load_dataset(coco_dataset)
    frame = manifest.frame.set_index("image")
    assert list(frame.index) == ["a.png", "b.png", "c.png"]
    assert manifest.root == coco_dataset / "images"
    assert all(p.is_file() for p in manifest.paths())
    # [x, y, w, h] = [10, 5, 20, 10] → [10, 5, 30, 15]; [1.5, 2.5, 3, 4] → [1.5, 2.5, 4.5, 6.5]
    assert json.loads(frame.at["a.png", "boxes"]) == [
        {"xyxy": [10.0, 5.0, 30.0, 15.0], "label": "lesion"},
        {"xyxy": [0.0, 0.0, 4.0, 6.0], "label": "implant"},
    ]
    assert json.loads(frame.at["b.png", "boxes"]) == [{"xyxy": [1.5, 2.5, 4.5, 6.5], "label": "lesion"}]
    assert json.loads(frame.at["c.png", "boxes"]) == []
    polygons = json.loads(frame.at["a.png", "polygons"])
    assert polygons == [
        {"points": [[10.0, 5.0], [30.0, 5.0], [30.0, 15.0]], "label": "lesion"},
        {"points": [[12.0, 6.0], [14.0, 6.0], [14.0, 8.0], [12.0, 8.0]], "label": "lesion"},
    ]
    assert frame["label"].tolist() == ["implant|lesion", "lesion", ""]
    assert frame["width"].tolist() == [40, 50, 16] and frame["height"].tolist() == [30, 20, 16]


def test_json_file_and_images_option(coco_dataset: Path, tmp_path_factory: pytest.TempPathFactory) -> None:
    json_path = coco_dataset / "annotations" / "instances.json"
    assert coco.detect(json_path) and coco.detect(coco_dataset)
    assert len(load_dataset(json_path)) == 3  # found ../images by itself
    moved = tmp_path_factory.mktemp("elsewhere")
    (coco_dataset / "images").rename(moved / "pics")
    with pytest.raises(DatasetFormatError, match=r"instances\.json: image file 'a\.png' not found.*--images"):
        load_dataset(json_path)
    manifest = load_dataset(json_path, images_root=moved / "pics")
    assert manifest.root == moved / "pics" and all(p.is_file() for p in manifest.paths())


def test_first_missing_file_is_named(coco_dataset: Path) -> None:
    (coco_dataset / "images" / "b.png").unlink()
    with pytest.raises(DatasetFormatError, match=r"'b\.png' not found"):
        load_dataset(coco_dataset)


def test_unknown_image_id(coco_dataset: Path) -> None:
    _edit(coco_dataset, lambda d: d["annotations"][1].update(image_id=99))
    with pytest.raises(DatasetFormatError, match=r"instances\.json: annotation id 12 refers to image_id 99"):
        load_dataset(coco_dataset)


def test_unknown_category(coco_dataset: Path) -> None:
    _edit(coco_dataset, lambda d: d["annotations"][2].update(category_id=3))
    with pytest.raises(DatasetFormatError, match=r"instances\.json: annotation id 13 has category_id 3"):
        load_dataset(coco_dataset)


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("bbox", [1, 2, 3], r"'bbox' must be \[x, y, width, height\]"),
        ("segmentation", [[1, 2, 3, 4]], "at least 3 points"),
    ],
)
def test_malformed_annotation(coco_dataset: Path, field: str, value: object, message: str) -> None:
    _edit(coco_dataset, lambda d: d["annotations"][0].update({field: value}))
    with pytest.raises(DatasetFormatError, match=message):
        load_dataset(coco_dataset)


def test_rle_raises_or_is_skipped(coco_dataset: Path) -> None:
    _edit(coco_dataset, lambda d: d["annotations"][2].update(segmentation={"size": [20, 50], "counts": "abc"}))
    with pytest.raises(DatasetFormatError, match=r"annotation id 13 has an RLE mask.*skip_rle=True"):
        load_dataset(coco_dataset)
    with pytest.warns(UserWarning, match="dropped 1 RLE"):
        frame = load_dataset(coco_dataset, skip_rle=True).frame.set_index("image")
    assert json.loads(frame.at["b.png", "boxes"]) == [{"xyxy": [1.5, 2.5, 4.5, 6.5], "label": "lesion"}]
    assert json.loads(frame.at["b.png", "polygons"]) == []


def test_not_coco(tmp_path: Path) -> None:
    (tmp_path / "x.json").write_text(json.dumps({"images": []}))
    assert not coco.detect(tmp_path / "x.json")
    with pytest.raises(DatasetFormatError, match=r"x\.json: not a COCO file.*'annotations'"):
        load_dataset(tmp_path / "x.json", format="coco")
    (tmp_path / "y.json").write_text("{not json")
    with pytest.raises(DatasetFormatError, match=r"y\.json: cannot read as JSON"):
        coco.load(tmp_path / "y.json")


def test_folder_with_two_coco_files(coco_dataset: Path) -> None:
    json_path = coco_dataset / "annotations" / "instances.json"
    (coco_dataset / "annotations" / "second.json").write_text(json_path.read_text())
    assert not coco.detect(coco_dataset)
    with pytest.raises(DatasetFormatError, match="exactly one COCO JSON"):
        coco.load(coco_dataset)
