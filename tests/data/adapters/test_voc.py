"""Pascal VOC adapter: boxes as written (or 1-based), negatives, the devkit split, images found anywhere, errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from osteon.data.adapters import detect_format, load_dataset, voc
from osteon.errors import DatasetFormatError

pytestmark = pytest.mark.filterwarnings("ignore::osteon.data.manifest.MissingPatientIdWarning")


def make_image(path: Path, size: tuple[int, int] = (32, 24)) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("L", size, color=128).save(path)
    return path


def write_xml(path: Path, filename: str, objects: list[tuple[str, tuple[float, ...], int]], size=(40, 30)) -> Path:
    parts = [f"<annotation><filename>{filename}</filename>"]
    parts.append(f"<size><width>{size[0]}</width><height>{size[1]}</height><depth>1</depth></size>")
    for name, (x1, y1, x2, y2), difficult in objects:
        parts.append(
            f"<object><name>{name}</name><difficult>{difficult}</difficult><bndbox><xmin>{x1}</xmin>"
            f"<ymin>{y1}</ymin><xmax>{x2}</xmax><ymax>{y2}</ymax></bndbox></object>"
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(parts) + "</annotation>")
    return path


@pytest.fixture
def voc_root(tmp_path: Path) -> Path:
    root = tmp_path / "voc"
    make_image(root / "JPEGImages" / "a.jpg", (40, 30))
    make_image(root / "JPEGImages" / "b.jpg", (40, 30))
    write_xml(root / "Annotations" / "a.xml", "a.jpg", [("fracture", (5, 6, 20, 25), 0), ("implant", (1, 1, 9, 9), 1)])
    write_xml(root / "Annotations" / "b.xml", "b.jpg", [])
    (root / "ImageSets" / "Main").mkdir(parents=True)
    (root / "ImageSets" / "Main" / "train.txt").write_text("a\n")
    (root / "ImageSets" / "Main" / "val.txt").write_text("b\n")
    (root / "ImageSets" / "Main" / "trainval.txt").write_text("a\nb\n")
    return root


def test_boxes_labels_split_and_negatives(voc_root: Path) -> None:
    assert detect_format(voc_root) == "voc"  # before class_folder, which JPEGImages/ + Annotations/ resemble
    frame = load_dataset(voc_root).frame.set_index("image")
    boxes = json.loads(frame.at["JPEGImages/a.jpg", "boxes"])
    assert boxes == [
        {"xyxy": [5.0, 6.0, 20.0, 25.0], "label": "fracture"},
        {"xyxy": [1.0, 1.0, 9.0, 9.0], "label": "implant", "difficult": 1},
    ]
    assert frame.at["JPEGImages/a.jpg", "label"] == "fracture|implant"
    assert json.loads(frame.at["JPEGImages/b.jpg", "boxes"]) == [] and frame.at["JPEGImages/b.jpg", "label"] == ""
    assert frame["split"].tolist() == ["train", "val"]
    assert frame["width"].tolist() == [40, 40] and frame["height"].tolist() == [30, 30]


def test_one_based_devkit_coordinates(voc_root: Path) -> None:
    frame = voc.load(voc_root, one_based=True).frame.set_index("image")
    assert json.loads(frame.at["JPEGImages/a.jpg", "boxes"])[0]["xyxy"] == [4.0, 5.0, 20.0, 25.0]


def test_images_found_under_other_folders(tmp_path: Path) -> None:
    root = tmp_path / "fa"
    make_image(root / "images" / "Fractured" / "x.jpg")
    write_xml(root / "Annotations" / "PASCAL VOC" / "x.xml", "x.jpg", [("fractured", (2, 2, 10, 10), 0)])
    manifest = load_dataset(root, format="voc")
    assert manifest.frame["image"].tolist() == ["images/Fractured/x.jpg"] and "split" not in manifest.frame
    assert all(p.is_file() for p in manifest.paths())


def test_errors_name_the_file(voc_root: Path) -> None:
    write_xml(voc_root / "Annotations" / "c.xml", "missing.jpg", [])
    with pytest.raises(DatasetFormatError, match=r"c\.xml: image 'missing\.jpg' not found"):
        voc.load(voc_root)
    (voc_root / "Annotations" / "c.xml").write_text("<annotation><filename>a.jpg</filename><object><name>x</name>")
    with pytest.raises(DatasetFormatError, match=r"c\.xml: not readable as XML"):
        voc.load(voc_root)
    write_xml(voc_root / "Annotations" / "c.xml", "a.jpg", [("fx", (1, 2, "x", 4), 0)])  # type: ignore[list-item]
    with pytest.raises(DatasetFormatError, match="numeric xmin, ymin, xmax, ymax"):
        voc.load(voc_root)
    make_image(voc_root / "other" / "a.jpg")
    (voc_root / "JPEGImages" / "a.jpg").unlink()
    write_xml(voc_root / "Annotations" / "c.xml", "b.jpg", [])
    make_image(voc_root / "other" / "b.jpg")
    (voc_root / "JPEGImages" / "b.jpg").unlink()
    make_image(voc_root / "more" / "b.jpg")
    with pytest.raises(DatasetFormatError, match="several places"):
        voc.load(voc_root)


def test_not_a_voc_folder(tmp_path: Path) -> None:
    (tmp_path / "Annotations").mkdir()
    (tmp_path / "Annotations" / "x.xml").write_text("<svg/>")
    assert not voc.detect(tmp_path)
    with pytest.raises(DatasetFormatError, match="not a Pascal VOC folder"):
        voc.load(tmp_path)


@pytest.mark.shared_data
def test_fracatlas_voc_matches_its_coco_boxes(shared_data: Path) -> None:
    """FracAtlas' VOC boxes are its COCO boxes rounded: pixel-corner coordinates, not 1-based."""
    root = shared_data / "fracatlas"
    via_voc = load_dataset(root, format="voc").frame.set_index("image")["boxes"]
    via_coco = load_dataset(root).frame.set_index("image")["boxes"]
    assert len(via_voc) == 974 and (via_voc == "[]").sum() == 366
    for image in via_coco.index[via_coco != "[]"][:100]:
        ours = np.array([b["xyxy"] for b in json.loads(via_voc[image])])
        theirs = np.array([b["xyxy"] for b in json.loads(via_coco[image])])
        np.testing.assert_allclose(ours, theirs, atol=1.5)
