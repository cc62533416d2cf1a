"""Heat-map overlays: the map blended on the radiograph, pixel for pixel, with a colour bar beside it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image as PILImage
from PIL import ImageDraw, ImageFont

DEFAULT_CMAP = "jet"


def colorize(values: np.ndarray, *, cmap: str = DEFAULT_CMAP) -> np.ndarray:
    """``(H, W)`` values in [0, 1] → ``(H, W, 3)`` uint8 RGB through a matplotlib colour map."""
    from matplotlib import colormaps

    rgba = colormaps[cmap](np.clip(np.nan_to_num(values), 0.0, 1.0))
    return (rgba[..., :3] * 255).round().astype(np.uint8)


def blend(image: np.ndarray, cam: np.ndarray, *, alpha: float = 0.45, cmap: str = DEFAULT_CMAP) -> np.ndarray:
    """The map over the grey image: ``(1 - alpha) * image + alpha * colour(map)``.

    Args:
        image: ``(H, W)`` grey image in [0, 1].
        cam: ``(H, W)`` map in [0, 1], same pixel grid.
        alpha: Opacity of the map.
        cmap: Matplotlib colour map name.

    Returns:
        ``(H, W, 3)`` uint8 RGB.
    """
    if image.shape != cam.shape:
        raise ValueError(f"image {image.shape} and map {cam.shape} must have the same shape.")
    grey = np.repeat(np.clip(image, 0, 1)[..., None] * 255.0, 3, axis=2)
    mixed = (1 - alpha) * grey + alpha * colorize(cam, cmap=cmap).astype(np.float32)
    return mixed.round().clip(0, 255).astype(np.uint8)


def with_colorbar(rgb: np.ndarray, *, cmap: str = DEFAULT_CMAP, label: str = "") -> np.ndarray:
    """Append a vertical colour bar (0 at the bottom, 1 at the top, ticks 0/0.5/1) to the right of ``rgb``.

    The image's own pixels are left untouched: column ``x < W`` of the result is column ``x`` of ``rgb``.

    Returns:
        ``(H, W + bar, 3)`` uint8 RGB.
    """
    h = rgb.shape[0]
    font_size = max(10, min(48, h // 28))
    bar_w = max(12, font_size)
    margin = max(4, font_size // 3)
    font = _font(font_size)
    text_w = int(font.getlength("0.5")) + margin
    panel = np.full((h, margin + bar_w + margin + text_w + margin, 3), 255, dtype=np.uint8)
    top, bottom = font_size, max(font_size + 2, h - font_size)
    ramp = np.linspace(1.0, 0.0, bottom - top)[:, None].repeat(bar_w, axis=1)
    panel[top:bottom, margin : margin + bar_w] = colorize(ramp, cmap=cmap)
    pil = PILImage.fromarray(panel)
    draw = ImageDraw.Draw(pil)
    x_text = margin + bar_w + margin
    for value, y in ((1.0, top), (0.5, (top + bottom) // 2), (0.0, bottom)):
        draw.line([(margin + bar_w, y), (margin + bar_w + margin // 2, y)], fill=(0, 0, 0))
        draw.text((x_text, y), f"{value:g}", fill=(0, 0, 0), font=font, anchor="lm")
    if label:
        draw.text((margin, 1), label, fill=(0, 0, 0), font=_font(max(8, font_size * 2 // 3)))
    return np.concatenate([rgb, np.asarray(pil)], axis=1)


def _font(size: int) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1 has one fixed-size bitmap font
        return ImageFont.load_default()


def draw_box(
    rgb: np.ndarray, box: tuple[float, float, float, float], *, color: tuple[int, int, int] = (255, 255, 255)
) -> np.ndarray:
    """``rgb`` with the outline of ``(x1, y1, x2, y2)`` (pixels) drawn on it, line width ~1/200 of the image."""
    pil = PILImage.fromarray(rgb)
    width = max(1, max(rgb.shape[:2]) // 200)
    ImageDraw.Draw(pil).rectangle([float(v) for v in box], outline=color, width=width)
    return np.asarray(pil)


def save_overlay(
    image: np.ndarray,
    cam: np.ndarray,
    path: str | Path,
    *,
    alpha: float = 0.45,
    cmap: str = DEFAULT_CMAP,
    box: tuple[float, float, float, float] | None = None,
) -> Path:
    """Write the blended map with its colour bar as a PNG (the image part at the image's own resolution).

    ``box``: an ``(x1, y1, x2, y2)`` region (original pixels) outlined on the overlay, e.g. the explained detection.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    rgb = blend(image, cam, alpha=alpha, cmap=cmap)
    if box is not None:
        rgb = draw_box(rgb, box)
    PILImage.fromarray(with_colorbar(rgb, cmap=cmap)).save(path)
    return path
