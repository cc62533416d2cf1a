"""YOLO adapter: normalised centre boxes → pixel xyxy (hand-computed), class names, bad lines."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from osteon.data.adapters import load_dataset, yolo
from osteon.errors import ConfigError, DatasetFormatError

pytestmark = pytest.mark.filterwarnings("ignore::osteon.data.manifest.MissingPatientIdWarning")


def test_boxes_in_pixels(yolo_dataset: Path) -> None:
    assert yolo.detect(yolo_dataset)
    manifest = load_dataset(yolo_dataset)
    frame = manifest.frame.set_index("image")
    assert list(frame.index) == ["images/train/a.png", "images/train/b.png", "images/val/c.jpg"]
    # a.png is 200×100. "0 0.5 0.5 0.2 0.4": centre (100, 50), size 40×40 → [80, 30, 120, 70].
    # "1 0.1 0.2 0.1 0.2": centre (20, 20), size 20×20 → [10, 10, 30, 30].
    boxes = json.loads(frame.at["images/train/a.png", "boxes"])
    assert [b["label"] for b in boxes] == ["fracture", "implant"]
    assert [b["xyxy"] for b in boxes] == [pytest.approx([80, 30, 120, 70]), pytest.approx([10, 10, 30, 30])]
    assert frame.at["images/train/a.png", "label"] == "fracture|implant"
    assert json.loads(frame.at["images/train/b.png", "boxes"]) == []  # empty label file: a negative image
    assert json.loads(frame.at["images/val/c.jpg", "boxes"]) == []  # no label file: a negative image
    assert frame["label"].tolist()[1:] == ["", ""]
    assert frame["split"].tolist() == ["train", "train", "val"]
    assert frame["width"].tolist() == [200, 80, 50] and frame["height"].tolist() == [100, 60, 40]
    assert all(p.is_file() for p in manifest.paths())


def test_polygon_line(yolo_dataset: Path) -> None:
    (yolo_dataset / "labels" / "train" / "b.txt").write_text("1 0.25 0.5 0.75 0.5 0.5 1.0\n")
    frame = yolo.load(yolo_dataset).frame.set_index("image")
    # b.png is 80×60: points (20, 30), (60, 30), (40, 60); extent [20, 30, 60, 60].
    polygons = json.loads(frame.at["images/train/b.png", "polygons"])
    assert polygons == [{"points": [[20.0, 30.0], [60.0, 30.0], [40.0, 60.0]], "label": "implant"}]
    assert json.loads(frame.at["images/train/b.png", "boxes"])[0]["xyxy"] == pytest.approx([20, 30, 60, 60])


@pytest.mark.parametrize("names_file", ["data.yaml", "labels.txt", "none", "option"])
def test_class_names_sources(yolo_dataset: Path, names_file: str) -> None:
    (yolo_dataset / "classes.txt").unlink()
    options: dict[str, object] = {}
    if names_file == "data.yaml":
        (yolo_dataset / "data.yaml").write_text("path: .\nnames:\n  0: fx\n  1: plate\n")
        expected = ["fx", "plate"]
    elif names_file == "labels.txt":
        (yolo_dataset / "labels.txt").write_text("fx\nplate\n")
        expected = ["fx", "plate"]
    elif names_file == "option":
        options["class_names"] = ["A", "B"]
        expected = ["A", "B"]
    else:
        expected = ["0", "1"]
    if names_file == "none":
        with pytest.warns(UserWarning, match="no class names found"):
            manifest = load_dataset(yolo_dataset)
    else:
        manifest = load_dataset(yolo_dataset, **options)
    assert [b["label"] for b in manifest.boxes(0)] == expected


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("0 0.5 0.5 0.2 0.4\n0 0.5 0.5\n", r"a\.txt, line 2: '0 0\.5 0\.5' has 2 numbers"),
        ("0 0.5 0.5 0.2 0.4\n\nx 0.5 0.5 0.2 0.4\n", r"a\.txt, line 3: .* is not 'class cx cy w h'"),
        ("2 0.5 0.5 0.2 0.4\n", r"a\.txt, line 1: class 2 is not one of the 2 class names"),
        ("0.5 0.5 0.5 0.2 0.4\n", r"a\.txt, line 1"),
    ],
)
def test_bad_line(yolo_dataset: Path, content: str, message: str) -> None:
    (yolo_dataset / "labels" / "train" / "a.txt").write_text(content)
    with pytest.raises(DatasetFormatError, match=message):
        load_dataset(yolo_dataset)


def test_unreadable_image_is_named(yolo_dataset: Path) -> None:
    (yolo_dataset / "images" / "train" / "broken.png").write_bytes(b"not a png")
    with pytest.raises(DatasetFormatError, match=r"broken\.png: cannot read the image size"):
        yolo.load(yolo_dataset)


def test_bad_inputs(tmp_path: Path, image_writer: Callable[..., Path], yolo_dataset: Path) -> None:
    with pytest.raises(ConfigError, match="class_names must be a list of strings"):
        yolo.load(yolo_dataset, class_names="fracture")  # type: ignore[arg-type]
    empty = tmp_path / "empty"
    (empty / "images").mkdir(parents=True)
    (empty / "labels").mkdir()
    (empty / "classes.txt").write_text("a\n")
    with pytest.raises(DatasetFormatError, match="no images"):
        yolo.load(empty)
    image_writer(tmp_path / "nolabels" / "images" / "a.png")
    assert not yolo.detect(tmp_path / "nolabels")
    with pytest.raises(DatasetFormatError, match="not a YOLO dataset"):
        yolo.load(tmp_path / "nolabels")
