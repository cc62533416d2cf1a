"""The synthetic knee phantoms: deterministic, labelled consistently, learnable, fast."""

from __future__ import annotations

import hashlib
import time
from pathlib import Path
from typing import Any, cast

import numpy as np
import pandas as pd
import pytest
from PIL import Image as PILImage

from osteon.data.checks import check_dataset
from osteon.data.manifest import Manifest
from osteon.data.phantom import make_phantom, make_phantom_dataset
from osteon.errors import ConfigError


def _digests(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.rglob("*.*"))}


def test_same_seed_same_bytes_and_other_seed_differs(tmp_path: Path) -> None:
    make_phantom_dataset(tmp_path / "a", images=12, size=64, seed=5)
    make_phantom_dataset(tmp_path / "b", images=12, size=64, seed=5)
    make_phantom_dataset(tmp_path / "c", images=12, size=64, seed=6)
    a, b, c = (_digests(tmp_path / x) for x in "abc")
    assert a == b
    assert a["images/P0001_L.png"] != c["images/P0001_L.png"]


def test_make_phantom_shapes_mask_and_box() -> None:
    image, mask, boxes = make_phantom(np.random.default_rng(0), size=96, fracture=True, kl_grade=2)
    assert image.shape == mask.shape == (96, 96)
    assert image.dtype == np.uint16 and mask.dtype == np.uint8
    assert image.max() > 40000 and image.min() < 10000  # uses the 16-bit range
    rows, cols = np.nonzero(mask)
    assert len(boxes) == 1 and boxes[0]["label"] == "fracture"
    assert boxes[0]["xyxy"] == [cols.min(), rows.min(), cols.max() + 1, rows.max() + 1]
    _, empty, no_boxes = make_phantom(np.random.default_rng(0), size=96, fracture=False, kl_grade=2)
    assert not empty.any() and no_boxes == []


@pytest.mark.parametrize("kl_grade", [None, 0, 4])
def test_fracture_darkens_the_masked_region(kl_grade: int | None) -> None:
    broken, mask, _ = make_phantom(np.random.default_rng(1), size=128, fracture=True, kl_grade=kl_grade)
    intact, _, _ = make_phantom(np.random.default_rng(1), size=128, fracture=False, kl_grade=kl_grade)
    region = mask.astype(bool)
    assert region.sum() > 50
    assert intact[region].mean() - broken[region].mean() > 0.2 * 65535
    assert np.abs(intact[~region].astype(float) - broken[~region]).mean() < 0.1 * 65535


def test_mirror_flips_image_mask_and_box() -> None:
    image, mask, boxes = make_phantom(np.random.default_rng(2), size=64, fracture=True, kl_grade=1)
    flipped, fmask, fboxes = make_phantom(np.random.default_rng(2), size=64, fracture=True, kl_grade=1, mirror=True)
    np.testing.assert_array_equal(flipped, image[:, ::-1])
    np.testing.assert_array_equal(fmask, mask[:, ::-1])
    x1, y1, x2, y2 = cast(list[int], boxes[0]["xyxy"])
    assert fboxes[0]["xyxy"] == [64 - x2, y1, 64 - x1, y2]


def test_joint_space_narrows_with_grade() -> None:
    def dark_run(grade: int) -> int:
        image, _, _ = make_phantom(np.random.default_rng(3), size=128, fracture=False, kl_grade=grade)
        column = image[32:96, 60:68].mean(axis=1) / 65535  # across the joint line, near the centre
        return int((column < (column.min() + np.median(column)) / 2).sum())  # soft tissue in the gap

    widths = [dark_run(g) for g in range(5)]
    assert widths == sorted(widths, reverse=True) and widths[0] - widths[4] >= 6, widths


def test_dataset_columns_labels_and_splits(tmp_path: Path) -> None:
    manifest = make_phantom_dataset(tmp_path, images=60, size=64, seed=0)
    frame = manifest.frame
    assert {
        "image",
        "patient_id",
        "label",
        "fractured",
        "kl_grade",
        "target",
        "age",
        "sex",
        "boxes",
        "mask",
        "width",
        "height",
        "split",
    } <= set(frame.columns)
    assert frame["patient_id"].value_counts().eq(2).all()
    assert frame["label"].value_counts().to_dict() == {"fractured": 30, "normal": 30}
    assert ((frame["label"] == "fractured") == (frame["fractured"] == 1)).all()
    assert (frame["mask"].notna() == (frame["fractured"] == 1)).all()
    assert frame["boxes"].map(lambda b: b != "[]").eq(frame["fractured"] == 1).all()
    assert set(frame["split"]) == {"train", "val", "test"}
    assert frame.groupby("patient_id")["split"].nunique().eq(1).all()
    rho = pd.Series(frame["target"]).corr(frame["kl_grade"].astype(int), method="spearman")
    assert rho < -0.9
    reloaded = Manifest.load(tmp_path / "manifest.csv")
    assert reloaded.frame["image"].tolist() == frame["image"].tolist()
    mask = np.asarray(PILImage.open(reloaded.resolve(frame["mask"].dropna().iloc[0])))
    assert mask.max() == 1
    assert PILImage.open(reloaded.resolve(frame["image"].iloc[0])).mode.startswith("I;16")
    assert check_dataset(reloaded, progress=False) == []  # a phantom is a clean dataset


def test_kl_grade_task_and_bad_input(tmp_path: Path) -> None:
    manifest = make_phantom_dataset(tmp_path / "kl", images=10, size=48, task="kl_grade")
    assert manifest.frame["label"].tolist() == manifest.frame["kl_grade"].tolist()
    with pytest.raises(FileExistsError):
        make_phantom_dataset(tmp_path / "kl", images=10, size=48)
    with pytest.raises(ConfigError, match="task"):
        make_phantom_dataset(tmp_path / "x", task="nope")
    with pytest.raises(ConfigError, match="size"):
        make_phantom_dataset(tmp_path / "y", images=2, size=16)


def test_speed(tmp_path: Path) -> None:
    start = time.perf_counter()
    make_phantom_dataset(tmp_path, images=160, size=128, seed=0)
    assert time.perf_counter() - start < 5.0


@pytest.mark.slow
def test_fracture_is_learnable_by_a_small_cnn(tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # small convolutions: one thread is as fast and immune to busy CI cores
    torch.set_flush_denormal(True)  # the first epochs are otherwise slowed down by denormal floats
    try:
        _train_and_score(torch, tmp_path)
    finally:
        torch.set_num_threads(threads)
        torch.set_flush_denormal(False)


def _train_and_score(torch: Any, tmp_path: Path) -> None:
    from sklearn.metrics import roc_auc_score

    torch.manual_seed(0)
    manifest = make_phantom_dataset(tmp_path, images=200, size=128, seed=1)
    pixels = [
        np.asarray(PILImage.open(manifest.resolve(p)).resize((64, 64), PILImage.Resampling.BILINEAR), dtype=np.float32)
        / 65535
        for p in manifest.frame["image"]
    ]
    x = (torch.tensor(np.stack(pixels))[:, None] - 0.4) / 0.2
    y = torch.tensor(manifest.frame["fractured"].to_numpy(dtype=np.float32))
    train = torch.tensor((manifest.frame["split"] != "test").to_numpy())
    net = torch.nn.Sequential(
        torch.nn.Conv2d(1, 16, 3, padding=1), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
        torch.nn.Conv2d(16, 32, 3, padding=1), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
        torch.nn.Conv2d(32, 64, 3, padding=1), torch.nn.ReLU(), torch.nn.AdaptiveMaxPool2d(1),
        torch.nn.Flatten(), torch.nn.Linear(64, 1),
    )  # fmt: skip
    optimizer = torch.optim.Adam(net.parameters(), 1e-3)
    xt, yt = x[train], y[train]
    for _ in range(8):
        order = torch.randperm(len(xt))
        for i in range(0, len(xt), 16):
            batch = order[i : i + 16]
            loss = torch.nn.functional.binary_cross_entropy_with_logits(net(xt[batch]).squeeze(1), yt[batch])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    with torch.no_grad():
        scores = net(x[~train]).squeeze(1).numpy()
    assert roc_auc_score(y[~train].numpy(), scores) > 0.9
