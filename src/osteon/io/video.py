"""Video files (fluoroscopy, ultrasound clips, screen recordings): frames read with PyAV (FFmpeg).

Frames come out as grayscale ``(H, W)`` float32 in [0, 1] (the luma plane, as radiographs are gray), with
their index and presentation time, one at a time, so a long clip never sits in memory. :func:`write_video`
makes clips (tests, benchmarks, demo).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from osteon.errors import ImageReadError

VIDEO_SUFFIXES = frozenset({".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg"})


@dataclass(frozen=True)
class VideoInfo:
    """What the container says about its first video stream.

    Attributes:
        path: The file.
        frames: Frame count from the header (``None`` when the container does not state it).
        fps: Average frame rate.
        width, height: Frame size in pixels.
        codec: Codec name (``h264``, ``mpeg4``, ``mjpeg`` ...).
    """

    path: Path
    frames: int | None
    fps: float | None
    width: int
    height: int
    codec: str


@dataclass(frozen=True)
class Frame:
    """One decoded frame: ``index`` (0-based, decoding order), ``time`` in seconds, ``array`` ``(H, W)`` in [0, 1]."""

    index: int
    time: float | None
    array: np.ndarray


def is_video(path: str | Path) -> bool:
    """True when the suffix is a video container (``.mp4``, ``.avi``, ``.mov``, ``.mkv`` ...)."""
    return Path(path).suffix.lower() in VIDEO_SUFFIXES


def _av() -> Any:
    try:
        import av
    except ImportError as exc:  # pragma: no cover - av is a core dependency
        raise ImportError(f"Reading video needs PyAV ({exc}). Fix: pip install av.") from None
    return av


def _open(path: Path) -> Any:
    av = _av()
    if not path.is_file():
        raise ImageReadError(path, "no such video file.", "check the path.")
    try:
        container = av.open(str(path))
    except (av.error.FFmpegError, OSError, ValueError) as exc:
        raise ImageReadError(path, f"cannot be opened as a video ({exc}).", "pass an .mp4/.avi/.mov file.") from None
    if not container.streams.video:
        container.close()
        raise ImageReadError(path, "has no video stream.", "pass a file with video frames.")
    return container


def video_info(path: str | Path) -> VideoInfo:
    """Header information of ``path`` (no frame is decoded).

    Raises:
        ImageReadError: missing file, not a video, or no video stream.
    """
    path = Path(path)
    container = _open(path)
    try:
        stream = container.streams.video[0]
        rate = stream.average_rate or stream.base_rate
        return VideoInfo(
            path=path,
            frames=int(stream.frames) or None,
            fps=float(rate) if rate else None,
            width=int(stream.codec_context.width),
            height=int(stream.codec_context.height),
            codec=str(stream.codec_context.name),
        )
    finally:
        container.close()


def read_frames(path: str | Path, *, every: int = 1, max_frames: int | None = None) -> Iterator[Frame]:
    """Decode ``path`` frame by frame as grayscale unit-range arrays.

    Args:
        path: A video file.
        every: Keep every ``every``-th frame (1 = all).
        max_frames: Stop after this many kept frames.

    Yields:
        :class:`Frame` records in decoding order.

    Raises:
        ImageReadError: the file cannot be opened or decoding fails part-way (the message gives the frame).

    Example:
        >>> for frame in read_frames("clip.mp4", every=5):  # doctest: +SKIP
        ...     print(frame.index, frame.array.shape)
    """
    if every < 1:
        raise ValueError(f"every must be >= 1; got {every}.")
    path = Path(path)
    av = _av()
    container = _open(path)
    kept = index = 0
    try:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        try:
            for decoded in container.decode(stream):
                if index % every == 0:
                    gray = decoded.to_ndarray(format="gray").astype(np.float32) / 255.0
                    yield Frame(index, float(decoded.time) if decoded.time is not None else None, gray)
                    kept += 1
                    if max_frames is not None and kept >= max_frames:
                        return
                index += 1
        except av.error.FFmpegError as exc:
            raise ImageReadError(path, f"decoding failed at frame {index} ({exc}).", "re-encode the video.") from None
    finally:
        container.close()


def write_video(path: str | Path, frames: Iterable[np.ndarray], *, fps: int = 10, codec: str | None = None) -> Path:
    """Write ``frames`` (``(H, W)`` or ``(H, W, 3)``; uint8, or float in [0, 1]) as a video file.

    The codec defaults to MPEG-4 Part 2 (``mpeg4``), which every FFmpeg build encodes, in ``.mp4``
    and ``.avi`` alike. Odd sizes are padded by one pixel (YUV 4:2:0 needs even sides).
    """
    av = _av()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    container = av.open(str(path), mode="w")
    stream = None
    try:
        for array in frames:
            rgb = _to_rgb8(np.asarray(array))
            if stream is None:
                stream = container.add_stream(codec or "mpeg4", rate=fps)
                stream.width, stream.height = rgb.shape[1], rgb.shape[0]
                stream.pix_fmt = "yuv420p"
            for packet in stream.encode(av.VideoFrame.from_ndarray(rgb, format="rgb24")):
                container.mux(packet)
        if stream is not None:
            for packet in stream.encode():
                container.mux(packet)
    finally:
        container.close()
    return path


def _to_rgb8(array: np.ndarray) -> np.ndarray:
    if array.dtype.kind == "f":
        array = (np.clip(array, 0, 1) * 255).round().astype(np.uint8)
    array = array.astype(np.uint8, copy=False)
    if array.ndim == 2:
        array = np.repeat(array[:, :, None], 3, axis=2)
    pad_h, pad_w = array.shape[0] % 2, array.shape[1] % 2
    if pad_h or pad_w:
        array = np.pad(array, ((0, pad_h), (0, pad_w), (0, 0)))
    return np.ascontiguousarray(array)
