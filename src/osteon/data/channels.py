"""Grey or colour input: chosen from the training images and recorded in the run.

Radiographs, CT and MRI are grey; ultrasound screen captures, histology, arthroscopy and photographs are often
colour. A run's ``channels`` option is ``auto`` (default), ``grey`` or ``rgb``; ``auto`` looks at a sample of the
training images and takes RGB when any of them has channels that differ (a grey image saved as RGB stays grey).
The choice goes into the run's preprocessing (``channels``) and task state (``in_chans``), so prediction,
explanation and export build the same model and read files the same way.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from osteon.errors import ConfigError, OsteonError

CHANNEL_MODES = ("auto", "grey", "rgb")


@dataclass(frozen=True)
class ChannelChoice:
    """The number of input channels (1 or 3) and why."""

    channels: int
    reason: str


def choose_channels(paths: Sequence[Path], mode: str = "auto", *, sample: int = 24, seed: int = 0) -> ChannelChoice:
    """Decide grey (1) or RGB (3) input from ``paths`` (the training images).

    Args:
        paths: Image files (only up to ``sample`` of them, drawn with ``seed``, are read).
        mode: ``auto`` (RGB when a sampled image is in colour), ``grey`` or ``rgb`` (forced).
        sample: How many images ``auto`` reads.
        seed: Draw of the sample.

    Raises:
        ConfigError: ``mode`` is not one of :data:`CHANNEL_MODES`.
    """
    from osteon.io import is_colour, read_image

    if mode not in CHANNEL_MODES:
        raise ConfigError(f"channels={mode!r} is not one of {', '.join(CHANNEL_MODES)}. Fix: --channels auto.")
    if mode == "grey":
        return ChannelChoice(1, "grey, as asked (--channels grey)")
    if mode == "rgb":
        return ChannelChoice(3, "RGB, as asked (--channels rgb)")
    rng = np.random.default_rng(seed)
    picked = rng.choice(len(paths), size=min(sample, len(paths)), replace=False) if len(paths) else []
    colour, read = [], 0
    for i in picked:
        try:
            image = read_image(paths[int(i)])
        except OsteonError:
            continue  # unreadable files are reported when the images are decoded
        if image.is_volume:
            continue
        read += 1
        if is_colour(image):
            colour.append(Path(paths[int(i)]).name)
    if colour:
        return ChannelChoice(
            3, f"RGB: {len(colour)} of {read} sampled training images are in colour (e.g. {colour[0]})"
        )
    return ChannelChoice(1, f"grey: none of {read} sampled training images is in colour")
