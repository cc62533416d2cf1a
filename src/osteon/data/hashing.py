"""Content hashes of a Manifest's files and the duplicate groups they define.

Two kinds of "same image":

* **byte-identical** files: SHA-256 of the file's bytes. Exact, cheap (no decoding), and what leaks
  most often in public datasets (FracAtlas ships 12 groups of copies under different ids).
* **near-duplicates** (optional): a perceptual hash (``imagehash.phash``, 64-bit DCT hash) of a
  downscaled grayscale decode; two images whose hashes differ in at most ``max_distance`` bits are
  linked. Catches re-encoded, resized or re-windowed copies, at the cost of decoding every image and
  of false links between very similar radiographs (tune ``max_distance``).

Groups are connected components (union-find) of the "same image" relation, computed with
:func:`scipy.sparse.csgraph.connected_components`.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from osteon.data._progress import track
from osteon.data.manifest import Manifest
from osteon.io.image import Image

_CHUNK = 1 << 20


def file_sha256(path: str | Path) -> str:
    """SHA-256 hex digest of a file's bytes (read in 1 MiB chunks)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def content_hashes(manifest: Manifest, *, progress: bool = True) -> pd.Series:
    """SHA-256 of every image file's bytes.

    Args:
        manifest: The dataset.
        progress: Draw a progress bar on stderr.

    Returns:
        A ``string`` Series aligned with ``manifest.frame`` (same index), named ``"sha256"``; ``<NA>``
        where the file is missing or cannot be opened.

    Example:
        >>> hashes = content_hashes(manifest, progress=False)  # doctest: +SKIP
        >>> hashes.duplicated(keep=False).sum()  # rows that have a byte-identical twin  # doctest: +SKIP
    """
    values: list[str | None] = []
    paths = manifest.paths()
    for path in track(paths, total=len(paths), description="hashing", enabled=progress):
        try:
            values.append(file_sha256(path))
        except OSError:
            values.append(None)
    return pd.Series(values, index=manifest.frame.index, dtype="string", name="sha256")


def perceptual_hashes(manifest: Manifest, *, progress: bool = True) -> pd.Series:
    """64-bit perceptual hash (``imagehash.phash``) of each image, decoded small and in grayscale.

    Returns:
        An object Series of ``imagehash.ImageHash`` (``None`` where the file does not decode),
        aligned with ``manifest.frame``, named ``"phash"``.
    """
    import imagehash
    from PIL import Image as PILImage

    from osteon.io import read_image

    values: list[object] = []
    paths = manifest.paths()
    for path in track(paths, total=len(paths), description="perceptual hashing", enabled=progress):
        try:
            gray = gray_uint8(read_image(path, size_hint=64))
        except Exception:  # a file that does not decode has no perceptual hash; checks report it separately
            values.append(None)
            continue
        values.append(imagehash.phash(PILImage.fromarray(gray, mode="L")))
    return pd.Series(values, index=manifest.frame.index, dtype="object", name="phash")


def gray_uint8(image: Image) -> np.ndarray:
    """A 2D ``uint8`` view of any decoded image (RGB → mean of channels, volume → middle slice).

    The intensities are min-max stretched to 0..255, so 16-bit and 8-bit copies of one picture
    give the same result.
    """
    array = np.asarray(image.array)
    if image.photometric == "RGB":
        array = array[..., :3].mean(axis=-1)
    while array.ndim > 2:
        array = array[array.shape[0] // 2]
    array = array.astype(np.float64)
    low, high = float(np.nanmin(array)), float(np.nanmax(array))
    if high <= low:
        return np.zeros(array.shape, dtype=np.uint8)
    return np.round((array - low) * (255.0 / (high - low))).astype(np.uint8)


def duplicate_groups(
    manifest: Manifest,
    *,
    near: bool = False,
    max_distance: int = 4,
    hashes: pd.Series | None = None,
    progress: bool = True,
) -> pd.Series:
    """Group id of every row: rows with the same id show the same image.

    Args:
        manifest: The dataset.
        near: Also link near-duplicates (perceptual hashes within ``max_distance`` bits). Decodes
            every image; the pairwise comparison is O(n²) in numpy (fine up to ~20k images).
        max_distance: Largest Hamming distance (of 64 bits) still called a near-duplicate.
        hashes: Precomputed :func:`content_hashes` (saves re-reading the files).
        progress: Draw progress bars on stderr.

    Returns:
        An ``int64`` Series aligned with ``manifest.frame``, named ``"duplicate_group"``. Ids are
        0..G-1 in order of first appearance; a row without any twin has a group of its own; rows
        whose file is missing are never linked by content.
    """
    if hashes is None:
        hashes = content_hashes(manifest, progress=progress)
    n = len(manifest)
    links = [links_from_keys(hashes)]
    if near:
        links.append(near_links(perceptual_hashes(manifest, progress=progress), max_distance=max_distance))
    return pd.Series(union_find(n, links), index=manifest.frame.index, name="duplicate_group")


def union_find(n: int, links: list[tuple[np.ndarray, np.ndarray]]) -> np.ndarray:
    """Connected components of ``n`` nodes under the given edges, numbered by first appearance.

    Args:
        n: Number of nodes (rows).
        links: Pairs of equal-length integer arrays ``(a, b)``: node ``a[i]`` is linked to ``b[i]``.

    Returns:
        ``int64`` array of shape ``(n,)``: component id per node, 0 for node 0's component, then
        increasing in order of each component's first node.
    """
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    rows = np.concatenate([np.asarray(a, dtype=np.int64) for a, _ in links] or [np.zeros(0, np.int64)])
    cols = np.concatenate([np.asarray(b, dtype=np.int64) for _, b in links] or [np.zeros(0, np.int64)])
    graph = coo_matrix((np.ones(len(rows), dtype=np.int8), (rows, cols)), shape=(n, n))
    _, labels = connected_components(graph, directed=False)
    # renumber by first appearance so that ids do not depend on scipy's internal order
    _, first, inverse = np.unique(labels, return_index=True, return_inverse=True)
    rank = np.argsort(np.argsort(first, kind="stable"), kind="stable")
    return rank[inverse].astype(np.int64)


def links_from_keys(keys: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Edges for :func:`union_find` chaining the rows (by position) that share a non-missing key.

    Args:
        keys: One key per row (hash, patient id ...); ``<NA>`` links nothing.

    Returns:
        ``(a, b)`` arrays of row positions: each row is linked to the next row with the same key.
    """
    codes = pd.Series(pd.factorize(keys.reset_index(drop=True), use_na_sentinel=True)[0])
    present = codes[codes >= 0]
    if present.empty:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    frame = pd.DataFrame({"code": present.to_numpy(), "row": present.index.to_numpy()})
    frame = frame.sort_values(["code", "row"], kind="stable")
    same = frame["code"].to_numpy()[1:] == frame["code"].to_numpy()[:-1]
    rows = frame["row"].to_numpy()
    return rows[:-1][same], rows[1:][same]


def near_links(phashes: pd.Series, *, max_distance: int) -> tuple[np.ndarray, np.ndarray]:
    """Edges for :func:`union_find` between rows (by position) whose perceptual hashes differ in at
    most ``max_distance`` bits; ``None`` hashes link nothing."""
    valid = [i for i, h in enumerate(phashes) if h is not None]
    if len(valid) < 2:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    bits = np.stack([np.asarray(phashes.iloc[i].hash, dtype=bool).ravel() for i in valid])  # (m, 64)
    packed = np.packbits(bits, axis=1)  # (m, 8) uint8
    a_list: list[np.ndarray] = []
    b_list: list[np.ndarray] = []
    popcount = np.unpackbits(np.arange(256, dtype=np.uint8)[:, None], axis=1).sum(axis=1)
    for start in range(len(valid)):  # row-by-row keeps memory O(m) instead of O(m²)
        xor = np.bitwise_xor(packed[start + 1 :], packed[start])
        distance = popcount[xor].sum(axis=1)
        close = np.nonzero(distance <= max_distance)[0] + start + 1
        if close.size:
            a_list.append(np.full(close.size, valid[start], dtype=np.int64))
            b_list.append(np.asarray(valid, dtype=np.int64)[close])
    if not a_list:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    return np.concatenate(a_list), np.concatenate(b_list)
