"""Content hashes and duplicate groups."""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image as PILImage

from osteon.data.hashing import content_hashes, duplicate_groups, gray_uint8, links_from_keys, union_find
from osteon.data.manifest import Manifest
from osteon.io.image import Image


def _noise_png(path: Path, seed: int, *, size: int = 64) -> np.ndarray:
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 256, (8, 8)).astype(np.uint8)
    array = np.asarray(
        PILImage.fromarray(base).resize((size, size), PILImage.Resampling.BILINEAR)
    )  # smooth, phash-friendly
    PILImage.fromarray(array).save(path)
    return array


def _manifest(root: Path, names: list[str]) -> Manifest:
    frame = pd.DataFrame({"image": names, "patient_id": [f"p{i}" for i in range(len(names))]})
    return Manifest(frame, root=root, name="t")


def test_content_hashes_are_sha256_of_bytes_and_na_for_missing(tmp_path: Path) -> None:
    _noise_png(tmp_path / "a.png", 0)
    _noise_png(tmp_path / "b.png", 1)
    manifest = _manifest(tmp_path, ["a.png", "b.png", "gone.png"])
    hashes = content_hashes(manifest, progress=False)
    assert hashes.iloc[0] == hashlib.sha256((tmp_path / "a.png").read_bytes()).hexdigest()
    assert hashes.iloc[0] != hashes.iloc[1]
    assert pd.isna(hashes.iloc[2])
    assert list(hashes.index) == list(manifest.frame.index)


def test_duplicate_groups_join_byte_identical_files_only(tmp_path: Path) -> None:
    _noise_png(tmp_path / "a.png", 0)
    _noise_png(tmp_path / "b.png", 1)
    (tmp_path / "a_copy.png").write_bytes((tmp_path / "a.png").read_bytes())
    manifest = _manifest(tmp_path, ["b.png", "a.png", "missing1.png", "a_copy.png", "missing2.png"])
    groups = duplicate_groups(manifest, progress=False)
    assert groups.iloc[1] == groups.iloc[3]
    assert groups.nunique() == 4  # b, {a, a_copy}, missing1, missing2 (missing files are never linked)
    assert list(groups) == [0, 1, 2, 1, 3]  # numbered by first appearance


def test_near_duplicates_link_a_reencoded_copy(tmp_path: Path) -> None:
    array = _noise_png(tmp_path / "a.png", 0)
    buffer = io.BytesIO()
    PILImage.fromarray(array).save(buffer, format="JPEG", quality=80)
    (tmp_path / "a.jpg").write_bytes(buffer.getvalue())
    _noise_png(tmp_path / "other.png", 7)
    manifest = _manifest(tmp_path, ["a.png", "a.jpg", "other.png"])
    exact = duplicate_groups(manifest, progress=False)
    near = duplicate_groups(manifest, near=True, progress=False)
    assert exact.nunique() == 3
    assert near.iloc[0] == near.iloc[1]
    assert near.iloc[2] != near.iloc[0]


def test_union_find_is_transitive_and_keeps_singletons() -> None:
    labels = union_find(6, [(np.array([0, 3]), np.array([2, 4])), (np.array([2]), np.array([5]))])
    assert labels[0] == labels[2] == labels[5]
    assert labels[3] == labels[4] != labels[0]
    assert labels[1] not in (labels[0], labels[3])
    assert list(labels) == [0, 1, 0, 2, 2, 0]


def test_links_from_keys_ignore_missing_keys() -> None:
    a, b = links_from_keys(pd.Series(["x", None, "x", "y", None, "x"], dtype="string"))
    labels = union_find(6, [(a, b)])
    assert labels[0] == labels[2] == labels[5]
    assert len(set(labels)) == 4


@pytest.mark.parametrize("scale", [1, 257])
def test_gray_uint8_is_depth_invariant(scale: int) -> None:
    base = np.arange(64, dtype=np.uint16).reshape(8, 8) * 3
    image = Image(array=base * scale, path=Path("x.png"))
    out = gray_uint8(image)
    assert out.dtype == np.uint8 and out.min() == 0 and out.max() == 255
    np.testing.assert_array_equal(out, gray_uint8(Image(array=base, path=Path("x.png"))))
