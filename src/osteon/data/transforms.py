"""Turning an image file into a model input, and radiograph-safe augmentation.

Preprocessing is a small record saved in every checkpoint, so prediction reproduces training
exactly: grayscale float in [0, 1] (window/bit depth applied by :func:`osteon.io.to_grayscale_float`),
letterboxed to a square (aspect ratio kept, zero padding), then ``(x - mean) / std``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.nn import functional as F
from torchvision import tv_tensors
from torchvision.transforms import v2

from osteon.errors import ImageReadError
from osteon.io import read_image, to_grayscale_float


@dataclass(frozen=True)
class Preprocessing:
    """How files become tensors. ``image_size`` is the square side in pixels.

    ``channels`` is 1 (grey, the default: older runs have no such key) or 3 (RGB, chosen from the data when the
    training images are in colour, see :func:`osteon.data.channels.choose_channels`); inputs are then
    ``(channels, S, S)``.
    """

    image_size: int
    mean: float = 0.5
    std: float = 0.25
    letterbox: bool = True
    channels: int = 1
    volume: bool = False  # inputs are volumes, read (and cached) by the task itself: decode_images skips them

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class Letterbox:
    """Where the original image sits inside the square input: ``input = original * scale + (pad_x, pad_y)``."""

    scale: float
    pad_x: int
    pad_y: int
    original_hw: tuple[int, int]


def load_unit_image(path: str | Path, prep: Preprocessing) -> tuple[np.ndarray, Letterbox]:
    """Read ``path`` and return a ``(S, S)`` (``(3, S, S)`` when ``prep.channels == 3``) float32 array in [0, 1]
    and its letterbox geometry.

    Raises:
        ImageReadError: unreadable file, or a volume where a 2D image is needed.
    """
    image = read_image(path, size_hint=prep.image_size)
    if image.is_volume:
        raise ImageReadError(
            path,
            f"is a volume/multi-frame image {image.array.shape}; this task takes 2D images.",
            "export the frame or slice to use, or use a volume-aware task.",
        )
    if prep.channels == 3:
        from osteon.io.normalize import to_rgb_float

        unit = to_rgb_float(image)
    else:
        unit = to_grayscale_float(image)
    # Geometry refers to the file's own pixel grid even when JPEG draft mode decoded it smaller.
    original_hw = tuple(image.extra.get("original_size", unit.shape))  # type: ignore[arg-type]
    if prep.letterbox:
        array, box = letterbox(unit, prep.image_size)
    else:
        hw = unit.shape[-2:]
        array, box = _resize(unit, (prep.image_size,) * 2), Letterbox(prep.image_size / hw[1], 0, 0, hw)
    to_original = unit.shape[-1] / original_hw[1]
    return array, Letterbox(box.scale * to_original, box.pad_x, box.pad_y, (int(original_hw[0]), int(original_hw[1])))


def letterbox(unit: np.ndarray, size: int) -> tuple[np.ndarray, Letterbox]:
    """Resize ``(H, W)`` (or ``(C, H, W)``) so the longer side is ``size`` and zero-pad to ``(size, size)``, centred."""
    h, w = unit.shape[-2:]
    scale = size / max(h, w)
    nh, nw = max(1, round(h * scale)), max(1, round(w * scale))
    resized = _resize(unit, (nh, nw))
    out = np.zeros((*unit.shape[:-2], size, size), dtype=np.float32)
    top, left = (size - nh) // 2, (size - nw) // 2
    out[..., top : top + nh, left : left + nw] = resized
    return out, Letterbox(scale, left, top, (h, w))


def _resize(unit: np.ndarray, hw: tuple[int, int]) -> np.ndarray:
    if unit.shape[-2:] == hw:
        return unit.astype(np.float32, copy=False)
    t = torch.from_numpy(np.ascontiguousarray(unit, dtype=np.float32))
    t = t[None, None] if t.ndim == 2 else t[None]
    out = F.interpolate(t, size=hw, mode="bilinear", antialias=True, align_corners=False)[0]
    return (out[0] if unit.ndim == 2 else out).numpy()


class RandomGamma(v2.Transform):
    """``x ** g`` with ``g`` drawn from ``[1 - amount, 1 + amount]`` on unit-range images.

    A torchvision v2 transform: called with ``(image, mask)`` or ``(image, boxes)`` it changes only the
    image, like ``ColorJitter``, so tasks can augment images and their annotations in one call.
    """

    def __init__(self, amount: float) -> None:
        super().__init__()
        self.amount = amount

    def make_params(self, flat_inputs: list[Any]) -> dict[str, Any]:
        return {"gamma": 1.0 + (torch.rand(()) * 2 - 1) * self.amount}

    def transform(self, inpt: Any, params: dict[str, Any]) -> Any:
        if self.amount <= 0 or isinstance(inpt, tv_tensors.Mask | tv_tensors.BoundingBoxes | tv_tensors.KeyPoints):
            return inpt
        if not isinstance(inpt, torch.Tensor):
            return inpt
        return inpt.clamp_min(0).pow(params["gamma"])


def build_augmentation(
    *, hflip: bool, rotate_degrees: float, scale_range: float, brightness: float, contrast: float, gamma: float
) -> v2.Compose:
    """Augmentation for unit-range ``(1, S, S)`` tensors: geometry, then intensity. No colour jitter.

    Call it with the image alone, or jointly with ``tv_tensors.Mask`` / ``tv_tensors.BoundingBoxes`` so that
    geometric steps move the annotations with the image and intensity steps leave them alone.

    Flips are off unless asked for: left/right carries meaning for most anatomy (laterality markers,
    asymmetric joints); use ``hflip=True`` where images of both sides are pooled (e.g. knees).
    """
    steps: list[torch.nn.Module] = []
    if hflip:
        steps.append(v2.RandomHorizontalFlip())
    if rotate_degrees or scale_range:
        steps.append(
            v2.RandomAffine(degrees=rotate_degrees, scale=(1 - scale_range, 1 + scale_range), translate=(0.03, 0.03))
        )
    if brightness or contrast:
        steps.append(v2.ColorJitter(brightness=brightness, contrast=contrast))
    steps.append(RandomGamma(gamma))
    return v2.Compose(steps)


def normalize(unit: torch.Tensor, prep: Preprocessing) -> torch.Tensor:
    """``(x - mean) / std`` on unit-range tensors."""
    return (unit - prep.mean) / prep.std


def with_channels(unit: torch.Tensor) -> torch.Tensor:
    """A ``(1, S, S)`` channel axis for a grey ``(S, S)`` image; colour ``(3, S, S)`` is returned as it is."""
    return unit[None] if unit.ndim == 2 else unit


def input_batch(unit: np.ndarray, prep: Preprocessing) -> torch.Tensor:
    """The normalised ``(1, C, S, S)`` model input of one unit image from :func:`load_unit_image`."""
    return normalize(with_channels(torch.from_numpy(unit))[None], prep)


def display_plane(unit: np.ndarray) -> np.ndarray:
    """A ``(S, S)`` grey plane of a unit image for overlays (the channel mean of a colour input)."""
    return unit if unit.ndim == 2 else unit.mean(axis=0)
