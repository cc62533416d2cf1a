"""Views for self-supervised pretraining: radiograph-safe steps, shapes, and the images collected from DATA."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torchvision.transforms import v2

from osteon.data.ssl_views import ViewsDataset, cache_size, collect_images, radiograph_views
from osteon.data.transforms import Preprocessing


def _steps(compose: v2.Compose) -> list[type]:
    out: list[type] = []
    for step in compose.transforms:
        out.append(type(step))
        if isinstance(step, v2.RandomApply):
            out.extend(type(inner) for inner in step.transforms)
    return out


def test_flips_only_when_asked_and_no_colour_jitter() -> None:
    assert v2.RandomHorizontalFlip not in _steps(radiograph_views(32, hflip=False))
    assert v2.RandomHorizontalFlip in _steps(radiograph_views(32, hflip=True))
    for step in radiograph_views(32, hflip=True).transforms:
        jitters = step.transforms if isinstance(step, v2.RandomApply) else [step]
        for jitter in jitters:
            if isinstance(jitter, v2.ColorJitter):
                assert jitter.saturation is None and jitter.hue is None


def test_views_have_the_crop_sizes_and_stay_normalised() -> None:
    rng = np.random.default_rng(0)
    stack = rng.random((3, cache_size(32), cache_size(32))).astype(np.float16)
    dataset = ViewsDataset(stack, Preprocessing(image_size=32), image_size=32, global_views=2, local_views=3)
    views = dataset[1]
    assert [tuple(v.shape) for v in views] == [(1, 32, 32)] * 2 + [(1, 16, 16)] * 3
    low, high = (0 - 0.5) / 0.25, (1 - 0.5) / 0.25
    assert all(torch.isfinite(v).all() and v.min() >= low and v.max() <= high for v in views)
    colour = ViewsDataset(rng.random((2, 3, 37, 37)).astype(np.float16), Preprocessing(32, channels=3),
                          image_size=32, global_views=1)  # fmt: skip
    assert tuple(colour[0][0].shape) == (3, 32, 32)


def test_collect_images_leaves_out_masks_and_duplicates(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    for folder in ("images", "masks"):  # a class-folder reader takes these for two classes
        (tmp_path / "seg" / folder).mkdir(parents=True)
        for i in range(3):
            Image.fromarray((rng.random((20, 20)) * 255).astype(np.uint8)).save(tmp_path / "seg" / folder / f"{i}.png")
    collected = collect_images([tmp_path / "seg", tmp_path / "seg" / "images"])
    assert sorted(p.parent.name for p in collected.paths) == ["images"] * 3
    assert collected.sources[0].endswith("(3 in mask folders left out), 3 images")
    assert collected.sources[1].endswith(", 0 images")  # the same files, used once
