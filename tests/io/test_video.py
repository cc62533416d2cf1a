"""Video frames through PyAV: write/read round trip (.mp4, .avi), frame stride, header info, bad files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from osteon.errors import ImageReadError
from osteon.io.video import is_video, read_frames, video_info, write_video


def ramp_frames(n: int = 9, shape: tuple[int, int] = (36, 50)) -> list[np.ndarray]:
    """Flat frames whose gray level rises 25 per frame, plus a bright block that moves right."""
    frames = []
    for i in range(n):
        frame = np.full(shape, 20 + 25 * i, np.uint8)
        frame[10:20, 4 * i : 4 * i + 8] = 255
        frames.append(frame)
    return frames


@pytest.mark.parametrize("suffix", [".mp4", ".avi"])
def test_round_trip(tmp_path: Path, suffix: str) -> None:
    frames = ramp_frames()
    path = write_video(tmp_path / f"clip{suffix}", frames, fps=6)
    info = video_info(path)
    assert (info.width, info.height, info.fps) == (50, 36, 6.0) and info.frames == 9
    decoded = list(read_frames(path))
    assert [f.index for f in decoded] == list(range(9))
    assert decoded[3].time == pytest.approx(0.5)
    assert decoded[0].array.shape == (36, 50) and decoded[0].array.dtype == np.float32
    for frame, original in zip(decoded, frames, strict=True):
        background = frame.array[25:, :] * 255  # lossy codec: compare the flat region's level
        assert abs(float(np.median(background)) - float(original[30, 40])) < 6
        column = int(np.argmax(frame.array[15, :]))  # the block moved with the frame index
        assert original[15, column] == 255


def test_every_and_max_frames(tmp_path: Path) -> None:
    path = write_video(tmp_path / "clip.mp4", ramp_frames(10), fps=10)
    assert [f.index for f in read_frames(path, every=3)] == [0, 3, 6, 9]
    assert [f.index for f in read_frames(path, every=2, max_frames=2)] == [0, 2]
    with pytest.raises(ValueError, match="every"):
        next(read_frames(path, every=0))


def test_float_frames_and_odd_sizes(tmp_path: Path) -> None:
    path = write_video(tmp_path / "f.mp4", [np.full((31, 45), 0.5, np.float32)] * 3)
    frame = next(read_frames(path))
    assert frame.array.shape == (32, 46)  # padded to even sides for YUV 4:2:0
    assert frame.array[:30, :44].mean() == pytest.approx(0.5, abs=0.03)


def test_bad_files(tmp_path: Path) -> None:
    assert is_video("a/b.MP4") and is_video("x.avi") and not is_video("x.png")
    with pytest.raises(ImageReadError, match="no such video"):
        video_info(tmp_path / "none.mp4")
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"this is not a video" * 10)
    with pytest.raises(ImageReadError, match=r"junk\.mp4: cannot be opened as a video"):
        list(read_frames(junk))
