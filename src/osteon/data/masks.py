"""Segmentation masks: rasterising polygons, reading label maps, and moving masks in and out of the letterbox.

Conventions:
    * A **label map** is an integer ``(H, W)`` array: 0 = background, ``k`` = class ``k`` (mutually exclusive
      classes). A **multi-label mask** is a boolean ``(K, H, W)`` array, one channel per foreground class
      (classes may overlap).
    * Polygon points are ``[x, y]`` in the ORIGINAL image's continuous pixel coordinates (COCO convention:
      x right, y down, ``(0, 0)`` the top-left corner of the top-left pixel). Polygons are rasterised by
      pycocotools (``mask.frPyObjects`` / ``decode``), the COCO reference rasteriser, so masks match what
      COCO tools and evaluation draw: a pixel belongs to a polygon when its centre ``(col + 0.5, row + 0.5)``
      lies inside it, exactly for axis-aligned edges; on slanted edges pycocotools works on a 1/5-pixel grid,
      so pixels whose centre lies within 0.25 px of an edge may go either way (a polygon thinner than a pixel
      can vanish at low resolution).
    * Input space is the square letterbox of :mod:`osteon.data.transforms`:
      ``input = original * scale + (pad_x, pad_y)`` (:class:`~osteon.data.transforms.Letterbox`).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from pycocotools import mask as coco_mask
from torch.nn import functional as F

from osteon.data.transforms import Letterbox
from osteon.errors import ImageReadError, ManifestError

__all__ = [
    "MAX_MASK_VALUES",
    "encode_label_map",
    "label_map_to_input",
    "letterbox_polygons",
    "mask_values",
    "probabilities_to_original",
    "rasterize_polygons",
    "read_label_map",
]

#: A "label map" with more distinct values than this is almost surely a grayscale image, not a mask.
MAX_MASK_VALUES = 64


# -- polygons ------------------------------------------------------------------------------------------------
def rasterize_polygons(
    polygons: Sequence[dict[str, Any]],
    shape: tuple[int, int],
    class_index: dict[str, int],
    *,
    multilabel: bool = False,
    scale: float = 1.0,
    offset: tuple[float, float] = (0.0, 0.0),
    where: str = "polygons",
) -> np.ndarray:
    """Paint polygons into a label map (or a multi-label mask) by the pixel-centre rule (pycocotools).

    Args:
        polygons: ``[{"points": [[x, y], ...], "label": name}, ...]`` in original pixels (Manifest ``polygons``).
        shape: ``(H, W)`` of the output grid.
        class_index: Label name → class index (1-based; 0 is background).
        multilabel: Return ``(K, H, W)`` bool with ``K = max(class_index) `` channels (channel ``k - 1`` for
            class ``k``) instead of an ``(H, W)`` uint8 label map where later polygons overwrite earlier ones.
        scale, offset: Map points to the output grid: ``p' = p * scale + offset`` (``offset = (pad_x, pad_y)``),
            e.g. to rasterise straight into a letterboxed input.
        where: Names the source in error messages (file or row).

    Returns:
        ``(H, W)`` uint8 label map, or ``(K, H, W)`` bool.

    Raises:
        ManifestError: a polygon with fewer than 3 points, non-numeric points, or a label not in ``class_index``.

    Example:
        >>> square = [{"points": [[1, 1], [3, 1], [3, 3], [1, 3]], "label": "fracture"}]
        >>> rasterize_polygons(square, (4, 4), {"fracture": 1}).sum()
        4
    """
    h, w = shape
    n_fg = max(class_index.values(), default=0)
    out = np.zeros((n_fg, h, w), dtype=bool) if multilabel else np.zeros((h, w), dtype=np.uint8)
    for k, polygon in enumerate(polygons):
        label = str(polygon.get("label", ""))
        if label not in class_index:
            raise ManifestError(
                f"{where}: polygon {k} has label {label!r}, which is not a class of this model "
                f"({sorted(class_index)}). Fix: correct the label or retrain with this class."
            )
        try:
            points = np.asarray(polygon["points"], dtype=np.float64).reshape(-1, 2)
        except (KeyError, TypeError, ValueError) as exc:
            raise ManifestError(f"{where}: polygon {k} has no numeric 'points' [[x, y], ...] ({exc}).") from exc
        if len(points) < 3 or not np.isfinite(points).all():
            raise ManifestError(
                f"{where}: polygon {k} ({label!r}) has {len(points)} point(s) or non-finite values; a polygon needs "
                "≥ 3 finite [x, y] points. Fix: drop the degenerate annotation."
            )
        points = points * scale + np.asarray(offset, dtype=np.float64)
        filled = polygon_mask(points, (h, w))
        if multilabel:
            out[class_index[label] - 1] |= filled
        else:
            out[filled] = class_index[label]
    return out


def polygon_mask(points: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """``(H, W)`` bool: the pixels of one polygon (``(N, 2)`` ``[x, y]`` points, N ≥ 3) by COCO's rasteriser.

    pycocotools' ``frPyObjects`` + ``decode``, with the COCO pixel convention of this module (pixel centre
    at ``+0.5``); parts outside the grid are clipped; a polygon with no area gives no pixels.
    """
    h, w = shape
    flat = np.asarray(points, dtype=np.float64).reshape(-1).tolist()
    rles = coco_mask.frPyObjects([flat], h, w)
    with warnings.catch_warnings():  # pycocotools' decode trips NumPy 2's __array__(copy=...) deprecation
        warnings.simplefilter("ignore", DeprecationWarning)
        return coco_mask.decode(rles)[:, :, 0].astype(bool)


def letterbox_polygons(
    polygons: Sequence[dict[str, Any]],
    geometry: Letterbox,
    size: int,
    class_index: dict[str, int],
    *,
    multilabel: bool = False,
    where: str = "polygons",
) -> np.ndarray:
    """Rasterise original-space polygons straight into the ``(size, size)`` letterboxed input grid."""
    return rasterize_polygons(
        polygons,
        (size, size),
        class_index,
        multilabel=multilabel,
        scale=geometry.scale,
        offset=(geometry.pad_x, geometry.pad_y),
        where=where,
    )


# -- label-map files ---------------------------------------------------------------------------------------
def read_label_map(path: str | Path, *, expected_hw: tuple[int, int] | None = None) -> np.ndarray:
    """Read a label-map file (PNG/TIFF/BMP raster, NIfTI or DICOM) as its raw integer values.

    Palette PNGs give their palette indices (the usual way class maps are stored); 8/16-bit grayscale
    gives the stored values; EXIF orientation is applied as for images. A NIfTI/DICOM volume of one slice
    becomes ``(H, W)``; a real volume stays ``(D, H, W)``.

    Args:
        path: The mask file.
        expected_hw: ``(H, W)`` of its image; a 2D mask of another size raises.

    Returns:
        ``(H, W)`` (or ``(D, H, W)``) int64 array of raw values.

    Raises:
        ImageReadError: unreadable file, a colour (RGB) mask, non-integer values, or a size that is not the
            image's.
    """
    path = Path(path)
    from osteon.io.formats import ImageFormat, detect_format

    image_format = detect_format(path)
    if image_format in (ImageFormat.NIFTI, ImageFormat.DICOM):
        from osteon.io import read_image

        array = np.asarray(read_image(path).array)
        if array.ndim == 3 and array.shape[0] == 1:
            array = array[0]
    else:
        array = _read_raster_labels(path)
    if array.dtype.kind == "f" and not (np.all(np.isfinite(array)) and np.all(array == np.round(array))):
        raise ImageReadError(
            path, "holds non-integer values; a label map stores class numbers.", "save the mask as integers."
        )
    array = array.astype(np.int64)
    if expected_hw is not None and array.ndim == 2 and tuple(array.shape) != tuple(expected_hw):
        raise ImageReadError(
            path,
            f"is {array.shape[0]}×{array.shape[1]} (H×W) but its image is {expected_hw[0]}×{expected_hw[1]}.",
            "masks must be in the image's own pixel grid; re-export the mask at the image's size.",
        )
    return array


def _read_raster_labels(path: Path) -> np.ndarray:
    from PIL import Image as PILImage
    from PIL import ImageOps

    from osteon.io.formats import DEFAULT_MAX_PIXELS

    try:
        with PILImage.open(path) as opened:
            if opened.size[0] * opened.size[1] > DEFAULT_MAX_PIXELS:
                raise ImageReadError(path, f"declares {opened.size[0]}×{opened.size[1]} pixels, over the size limit.")
            pil: PILImage.Image = ImageOps.exif_transpose(opened)
            if pil.mode in ("RGB", "RGBA"):
                rgb = np.asarray(pil.convert("RGB"))
                if not (np.array_equal(rgb[..., 0], rgb[..., 1]) and np.array_equal(rgb[..., 0], rgb[..., 2])):
                    raise ImageReadError(
                        path,
                        "is a colour image; a label map has one integer class per pixel.",
                        "save it as a grayscale or palette PNG whose values are the class numbers (0 = background).",
                    )
                return rgb[..., 0]
            if pil.mode == "LA":
                pil = pil.getchannel(0)
            return np.asarray(pil)
    except ImageReadError:
        raise
    except (OSError, ValueError) as exc:
        raise ImageReadError(path, f"could not be read as a mask ({exc}).", "re-export it as a PNG label map.") from exc


def mask_values(array: np.ndarray, *, path: str | Path = "mask") -> list[int]:
    """Sorted distinct values of a label map; raises when there are too many for a mask.

    Raises:
        ImageReadError: negative values or more than :data:`MAX_MASK_VALUES` distinct values (a grayscale image?).
    """
    values = np.unique(array)
    if len(values) > MAX_MASK_VALUES:
        raise ImageReadError(
            path,
            f"has {len(values)} distinct values; a label map has one value per class (0 = background).",
            "check that the 'mask' column points at masks, not at images.",
        )
    if len(values) and values[0] < 0:
        raise ImageReadError(path, f"holds negative value {int(values[0])}; class numbers are ≥ 0.")
    return [int(v) for v in values]


def encode_label_map(raw: np.ndarray, values: Sequence[int], *, path: str | Path = "mask") -> np.ndarray:
    """Raw label-map values → class indices ``0..len(values)-1`` (``values[0]`` must be 0, background).

    Raises:
        ImageReadError: the mask holds a value that is not a known class.

    Example:
        >>> encode_label_map(np.array([[0, 255], [255, 0]]), [0, 255]).tolist()
        [[0, 1], [1, 0]]
    """
    lookup = np.asarray(values, dtype=np.int64)
    index = np.searchsorted(lookup, raw)
    index = np.clip(index, 0, len(lookup) - 1)
    unknown = lookup[index] != raw
    if unknown.any():
        bad = sorted({int(v) for v in np.unique(raw[unknown])[:10]})
        raise ImageReadError(
            path,
            f"holds value(s) {bad} that are not classes of this model (mask values {list(values)}).",
            "fix the mask, or retrain so that these values are classes.",
        )
    return index.astype(np.uint8 if len(values) <= 256 else np.int64)


# -- letterbox in and out ------------------------------------------------------------------------------------
def label_map_to_input(labels: np.ndarray, geometry: Letterbox, size: int, *, n_classes: int) -> np.ndarray:
    """Resize a class-index map ``(H, W)`` into the ``(size, size)`` letterbox like its image.

    Each class's indicator is resized with the same antialiased bilinear filter as the image and the
    pixel takes the class with the largest share. A structure thinner than an input pixel would vanish by
    that rule (a fascicle line 3 px wide in a 1234-px ultrasound image covers a third of a 256-px input
    pixel), so a foreground class that keeps less than half of its area (the sum of its shares) is redrawn
    as its ridge (the pixels it covers at least half as much as their most covered neighbour): thin lines
    stay continuous, about one pixel wide; thick structures are unchanged. Multi-label masks ``(K, H, W)``
    are resized per channel and thresholded at 0.5, with the same rule per channel.

    Returns:
        ``(size, size)`` uint8 (or ``(K, size, size)`` bool).
    """
    h, w = labels.shape[-2:]
    nh = min(size - geometry.pad_y, max(1, round(h * geometry.scale)))
    nw = min(size - geometry.pad_x, max(1, round(w * geometry.scale)))
    top, left = geometry.pad_y, geometry.pad_x
    if labels.ndim == 3:
        channels = torch.from_numpy(labels.astype(np.float32))[None]
        shares = _resize(channels, (nh, nw))[0]
        resized = shares > 0.5
        for k in range(len(shares)):
            _keep_thin(resized[k], shares[k], value=True, free=~resized[k])
        out = np.zeros((labels.shape[0], size, size), dtype=bool)
        out[:, top : top + nh, left : left + nw] = resized.numpy()
        return out
    if (h, w) == (nh, nw):
        resized_labels = labels.astype(np.uint8)
    else:
        onehot = F.one_hot(torch.from_numpy(labels.astype(np.int64)), n_classes).permute(2, 0, 1).float()[None]
        shares = _resize(onehot, (nh, nw))[0]
        resized_labels = shares.argmax(0).numpy().astype(np.uint8)
        for c in range(1, n_classes):
            _keep_thin(resized_labels, shares[c], value=c, free=resized_labels == 0)
    out = np.zeros((size, size), dtype=np.uint8)
    out[top : top + nh, left : left + nw] = resized_labels
    return out


def _keep_thin(target: Any, share: torch.Tensor, *, value: Any, free: Any) -> None:
    """Redraw a class that lost more than half of its area (``share.sum()``) as its ridge, in place.

    The ridge is every ``free`` pixel whose share is at least half of the largest share in its 3×3 neighbourhood
    (and at least 0.05): a continuous line about one pixel wide along a structure thinner than a pixel.
    ``target`` (numpy or torch, ``(h, w)``) gets ``value`` there.
    """
    target_np = target.numpy() if isinstance(target, torch.Tensor) else target
    free_np = free.numpy() if isinstance(free, torch.Tensor) else np.asarray(free)
    expected = float(share.sum())
    if expected < 1 or (target_np == value).sum() >= 0.5 * expected:
        return
    local_max = F.max_pool2d(share[None, None].float(), 3, stride=1, padding=1)[0, 0]
    ridge = ((share >= 0.5 * local_max) & (share >= 0.05)).numpy()
    target_np[ridge & free_np] = value


def _resize(x: torch.Tensor, hw: tuple[int, int]) -> torch.Tensor:
    if tuple(x.shape[-2:]) == hw:
        return x
    return F.interpolate(x, size=hw, mode="bilinear", antialias=True, align_corners=False)


def probabilities_to_original(probabilities: torch.Tensor, geometry: Letterbox) -> torch.Tensor:
    """Map ``(C, S, S)`` maps of the letterboxed input back onto the original ``(C, H, W)`` pixel grid.

    Exact inverse of the letterbox geometry (bilinear sampling at ``(col + 0.5) * scale + pad_x`` and
    ``(row + 0.5) * scale + pad_y``), so the result is aligned with the original image whatever its size
    or aspect ratio.
    """
    _, s_h, s_w = probabilities.shape
    h, w = geometry.original_hw
    dtype = probabilities.dtype if probabilities.dtype.is_floating_point else torch.float32
    xs = ((torch.arange(w, dtype=torch.float64) + 0.5) * geometry.scale + geometry.pad_x) / s_w * 2 - 1
    ys = ((torch.arange(h, dtype=torch.float64) + 0.5) * geometry.scale + geometry.pad_y) / s_h * 2 - 1
    grid = torch.stack(torch.meshgrid(ys.to(dtype), xs.to(dtype), indexing="ij")[::-1], dim=-1)[None]
    out = F.grid_sample(
        probabilities[None].to(dtype), grid.to(probabilities.device), mode="bilinear", align_corners=False
    )
    return out[0]
