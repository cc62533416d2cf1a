"""Torch datasets over a Manifest: images decoded once into memory, augmented per epoch."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from osteon.data.transforms import Letterbox, Preprocessing, load_unit_image, normalize, with_channels
from osteon.errors import OsteonError


@dataclass
class DecodedImages:
    """Images decoded once for a run.

    Attributes:
        stack: ``(N, S, S)`` float16 in [0, 1] (half the memory of float32), ``(N, 3, S, S)`` for colour
            preprocessing (``prep.channels == 3``); zeros where unreadable.
        geometry: Where each original sits in its square (maps boxes/masks between the two spaces).
        errors: ``{position: message}`` of files that could not be read.
    """

    stack: np.ndarray
    geometry: list[Letterbox | None]
    errors: dict[int, str]

    def readable(self) -> np.ndarray:
        """Positions that decoded."""
        return np.array([i for i in range(len(self.stack)) if i not in self.errors], dtype=np.int64)


def decode_images(
    paths: Sequence[Path], prep: Preprocessing, *, workers: int = 2, progress: bool = True, description: str = "decode"
) -> DecodedImages:
    """Decode every path into a :class:`DecodedImages` with threads and a progress bar.

    Nothing is dropped silently: unreadable files are listed in ``errors`` and callers report them.
    """
    if prep.volume:  # volume tasks read, resample and cache their inputs themselves (osteon.tasks.segment3d)
        return DecodedImages(np.zeros((len(paths), 1, 1), dtype=np.float16), [None] * len(paths), {})
    size = prep.image_size
    channels = (prep.channels,) if prep.channels != 1 else ()
    stack = np.zeros((len(paths), *channels, size, size), dtype=np.float16)
    geometry: list[Letterbox | None] = [None] * len(paths)
    errors: dict[int, str] = {}

    def work(i: int) -> None:
        try:
            stack[i], geometry[i] = load_unit_image(paths[i], prep)
        except OsteonError as exc:
            errors[i] = str(exc)

    # Pillow and the DICOM codecs release the GIL while decoding, so threads use both cores.
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        jobs = pool.map(work, range(len(paths)))
        if progress and len(paths) > 16:
            from rich.progress import track

            list(track(jobs, total=len(paths), description=f"{description} {len(paths)} images", transient=True))
        else:
            list(jobs)
    return DecodedImages(stack, geometry, errors)


class ImageDataset(Dataset):
    """Items ``{"image": (1, S, S) float32, "target": ..., "covariates": (D,), "index": int}``.

    Args:
        images: ``(N, S, S)`` unit-range stack from :func:`decode_images`.
        targets: ``(N,)`` or ``(N, C)`` encoded targets (see the task's ``targets``).
        prep: Preprocessing (normalisation constants).
        covariates: ``(N, D)`` encoded covariates, or ``None``.
        augment: Callable on unit-range ``(1, S, S)`` tensors, applied before normalisation.
        indices: Row numbers reported back in ``"index"`` (default ``0..N-1``).
    """

    def __init__(
        self,
        images: np.ndarray,
        targets: np.ndarray,
        prep: Preprocessing,
        *,
        covariates: np.ndarray | None = None,
        augment: Callable[[torch.Tensor], torch.Tensor] | None = None,
        indices: np.ndarray | None = None,
    ) -> None:
        if len(images) != len(targets):
            raise ValueError(f"{len(images)} images but {len(targets)} targets.")
        self.images = torch.from_numpy(images)
        self.targets = torch.from_numpy(np.asarray(targets))
        self.covariates = torch.from_numpy(covariates) if covariates is not None else None
        self.prep = prep
        self.augment = augment
        self.indices = indices if indices is not None else np.arange(len(images))

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        image = with_channels(self.images[i].float())
        if self.augment is not None:
            image = self.augment(image).clamp(0, 1)
        item = {"image": normalize(image, self.prep), "target": self.targets[i], "index": torch.tensor(self.indices[i])}
        if self.covariates is not None:
            item["covariates"] = self.covariates[i]
        return item
