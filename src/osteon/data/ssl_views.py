"""Unlabelled images for self-supervised pretraining: finding them, and radiograph-safe random views of them.

:func:`collect_images` turns DATA arguments (any dataset layout :func:`~osteon.data.adapters.load_dataset` reads,
or a plain folder of images, or image files) into one list of image files; labels are ignored.
:func:`radiograph_views` draws one random view of a unit-range ``(C, S, S)`` tensor: a random resized crop, a small
rotation, brightness/contrast, gamma and Gaussian blur; horizontal flips only when asked for (laterality matters);
no colour jitter. :class:`ViewsDataset` gives the views of one cached image per item.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset
from torchvision.transforms import v2

from osteon.data.transforms import Preprocessing, RandomGamma, normalize, with_channels
from osteon.errors import ConfigError, DatasetFormatError

#: Images are cached this much larger than the crop, so random crops keep detail while memory stays bounded.
CACHE_MARGIN = 1.15


@dataclass
class CollectedImages:
    """Image files of the DATA arguments, in order without duplicates, and how each argument was read."""

    paths: list[Path]
    sources: list[str] = field(default_factory=list)  # "ARG: fracatlas dataset, 717 images" ...


#: Folders whose images are annotations, not radiographs: left out when a plain folder is searched.
MASK_FOLDERS = frozenset({"mask", "masks", "label", "labels", "annotations", "segmentation", "segmentations", "gt"})


def collect_images(data: Sequence[str | Path], *, exclude_splits: Sequence[str] = ("test",)) -> CollectedImages:
    """Every image of the DATA arguments (dataset folders or files, plain folders of images, image files).

    A path that a dataset format recognises is read by its adapter: labels are ignored, and rows of the dataset's
    own ``exclude_splits`` (default: its test split, so that a later test set stays unseen) are left out. Any other
    folder is searched for image files (:func:`osteon.io.discover.find_images`). Images in folders of masks
    (:data:`MASK_FOLDERS`, e.g. ``images/`` + ``masks/``, which a class-folder reader would take for two classes) are
    left out. Files listed twice (two arguments holding the same images) are used once.

    Raises:
        ConfigError: no DATA argument, a path that does not exist, or no image found in any of them.
    """
    from osteon.data.adapters import load_dataset
    from osteon.io.discover import find_images

    if not data:
        raise ConfigError("no DATA given. Fix: pass one or more dataset folders or folders of images.")
    seen: set[Path] = set()
    paths: list[Path] = []
    sources: list[str] = []
    for item in data:
        path = Path(item)
        if not path.exists():
            raise ConfigError(f"{path}: no such file or folder. Fix: pass existing dataset folders or image folders.")
        try:
            with warnings.catch_warnings():  # "no patient_id" and split warnings do not matter without labels
                warnings.simplefilter("ignore")
                manifest = load_dataset(path)
            frame = manifest.frame
            excluded = np.zeros(len(frame), dtype=bool)
            if "split" in frame:
                excluded = frame["split"].isin(list(exclude_splits)).to_numpy(dtype=bool, na_value=False)
            files = manifest.paths_of(np.flatnonzero(~excluded))
            left = int(excluded.sum())
            how = "dataset" + (f" ({left} images of its {'/'.join(exclude_splits)} split left out)" if left else "")
        except DatasetFormatError:
            files = list(find_images([path]).files)
            how = "images found in the folder" if path.is_dir() else "image file"
        root = path if path.is_dir() else path.parent
        found = [f for f in files if not _in_mask_folder(f, root)]
        if len(found) < len(files):  # e.g. images/ + masks/ read as two classes of a class-folder dataset
            how += f" ({len(files) - len(found)} in mask folders left out)"
        new = [p for p in found if p.resolve() not in seen]
        seen.update(p.resolve() for p in new)
        paths.extend(new)
        sources.append(f"{path}: {how}, {len(new)} images")
    if not paths:
        listed = ", ".join(str(p) for p in data)
        raise ConfigError(
            f"no images found in {listed}. Fix: pass folders that hold PNG/JPEG/DICOM/TIFF images (searched "
            "recursively) or datasets that `osteon data summary` reads."
        )
    return CollectedImages(paths, sources)


def _in_mask_folder(file: Path, root: Path) -> bool:
    """Whether ``file`` lies in a folder of annotations (:data:`MASK_FOLDERS`) below ``root`` (else: its parent)."""
    try:
        folders = file.relative_to(root).parts[:-1]
    except ValueError:  # a manifest that points elsewhere: only the file's own folder counts
        folders = (file.parent.name,)
    return bool(MASK_FOLDERS & {part.lower() for part in folders})


def cache_size(image_size: int) -> int:
    """The side images are cached at: a little larger than the crop (:data:`CACHE_MARGIN`)."""
    return round(image_size * CACHE_MARGIN)


def radiograph_views(size: int, *, hflip: bool, scale: tuple[float, float] = (0.3, 1.0)) -> v2.Compose:
    """One random view of a unit-range ``(C, H, W)`` tensor as ``(C, size, size)``.

    Geometry: a random resized crop (area ``scale`` of the image, aspect 3:4 to 4:3), rotation up to 10°, a
    horizontal flip only when ``hflip``. Intensity (applied to grey and colour alike, never hue or saturation):
    brightness and contrast ±30 % (p 0.8), gamma 0.7–1.3, Gaussian blur σ 0.1–1.5 (p 0.5).
    """
    kernel = 9  # covers ±3 σ of the largest blur (σ 1.5)
    steps: list[torch.nn.Module] = [
        v2.RandomResizedCrop(size, scale=scale, ratio=(3 / 4, 4 / 3), antialias=True),
    ]
    if hflip:
        steps.append(v2.RandomHorizontalFlip())
    steps += [
        v2.RandomRotation(10),
        v2.RandomApply([v2.ColorJitter(brightness=0.3, contrast=0.3)], p=0.8),
        RandomGamma(0.3),
        v2.RandomApply([v2.GaussianBlur(kernel, sigma=(0.1, 1.5))], p=0.5),
    ]
    return v2.Compose(steps)


class ViewsDataset(Dataset):
    """Item ``i``: a list of normalised random views of cached image ``i``.

    ``global_views`` views at ``image_size`` (crops of 30–100 % of the image) and ``local_views`` at
    ``local_size`` (crops of 5–30 %, DINO's multi-crop).

    Args:
        images: ``(N, S, S)`` or ``(N, 3, S, S)`` float16 unit-range stack (:func:`osteon.data.datasets.decode_images`).
        prep: Normalisation of the model input (mean/std; the fine-tuned models use the same).
    """

    def __init__(
        self,
        images: np.ndarray,
        prep: Preprocessing,
        *,
        image_size: int,
        global_views: int,
        local_views: int = 0,
        local_size: int | None = None,
        hflip: bool = False,
    ) -> None:
        self.images = torch.from_numpy(images)
        self.prep = prep
        self.global_views = global_views
        self.local_views = local_views
        self.global_view = radiograph_views(image_size, hflip=hflip)
        self.local_view = radiograph_views(local_size or image_size // 2, hflip=hflip, scale=(0.05, 0.3))

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> list[torch.Tensor]:
        image = with_channels(self.images[i].float())
        views = [self.global_view(image) for _ in range(self.global_views)]
        views += [self.local_view(image) for _ in range(self.local_views)]
        return [normalize(v.clamp(0, 1), self.prep) for v in views]
