"""``load_dataset``: the one entry point from a path on disk to a Manifest."""

from __future__ import annotations

import inspect
import os
import warnings
from difflib import get_close_matches
from pathlib import Path
from typing import Any

from osteon.data.adapters import ADAPTERS, DETECTION_ORDER
from osteon.data.adapters._base import DatasetAdapter
from osteon.data.manifest import Manifest, PathOutsideRootWarning
from osteon.errors import ConfigError, DatasetFormatError


def detect_format(path: str | os.PathLike[str]) -> str:
    """Name of the first format in :data:`~osteon.data.adapters.DETECTION_ORDER` that recognises ``path``.

    Raises:
        DatasetFormatError: ``path`` does not exist or no format recognises it; the message lists
            every format with its layout and how to pass one explicitly.
    """
    path = _existing(Path(path))
    for adapter in DETECTION_ORDER:
        if adapter.detect(path):
            return adapter.name
    layouts = "\n".join(f"  {a.name}: {a.layout}" for a in DETECTION_ORDER)
    raise DatasetFormatError(
        f"{path}: cannot tell the dataset format. Known formats:\n{layouts}\n"
        "Fix: arrange the data as one of these, or name the format: load_dataset(path, format='NAME') "
        "(CLI: --format NAME)."
    )


def load_dataset(path: str | os.PathLike[str], *, format: str | None = None, **options: Any) -> Manifest:
    """Read a dataset in any supported layout into a Manifest.

    Args:
        path: Dataset folder or file (COCO JSON, CSV of paths, saved Manifest ...).
        format: Registered format name (``fracatlas``, ``class_folder``, ``coco``, ``yolo``, ``csv``,
            ``dicom_dir``, ``manifest``; ``-`` may stand for ``_``). None: detected.
        **options: Format-specific keyword options (e.g. ``patient_pattern`` for ``class_folder``,
            ``images_root`` for ``coco``, ``image_column`` for ``csv``, ``per_series`` for ``dicom_dir``).
            Options whose value is None are ignored, so that a CLI can pass every option it knows. When the
            format is detected, only formats that take every given option are tried, and when none of them
            recognises ``path`` but exactly one takes the options, that one reads it (``image_column='scan'``
            makes a CSV whose path column has no usual name readable without ``format='csv'``).

    Returns:
        The Manifest built by the format's adapter. Relative paths that leave the dataset root
        (``../``) are kept but warned about (:class:`~osteon.data.manifest.PathOutsideRootWarning`,
        naming the rows).

    Raises:
        UnknownNameError: ``format`` is not registered (lists the close names).
        DatasetFormatError: ``path`` does not exist, is not recognised, or does not follow the layout.
        ConfigError: an option the format does not take (lists the ones it takes), or a bad option value.

    Example:
        >>> manifest = load_dataset("data/knee", format="class_folder", patient_pattern=r"^(?P<patient_id>\\d+)")
        ... # doctest: +SKIP
    """
    path = _existing(Path(path))
    given = {key: value for key, value in options.items() if value is not None}
    if format is not None:
        name = format.strip().lower().replace("-", "_")
    elif given:
        name = _detect_with_options(path, given)
    else:
        name = detect_format(path)
    adapter = ADAPTERS.get(name)
    _check_options(adapter, given)
    manifest = adapter.load(path, **given)
    warn_outside_root(manifest)
    return manifest


def warn_outside_root(manifest: Manifest) -> None:
    """Warn (naming the rows) when image/mask paths climb out of the Manifest's root with ``../``."""
    rows = manifest.rows_outside_root()
    if not rows:
        return
    frame = manifest.frame
    shown = "; ".join(f"row {i}: {frame['image'].iat[i]}" for i in rows[:5])
    more = f" (+{len(rows) - 5} more)" if len(rows) > 5 else ""
    warnings.warn(
        f"{manifest.name}: {len(rows)} row(s) point outside the dataset root {manifest.root} with '../': "
        f"{shown}{more}. The dataset is not self-contained (moving or sharing its folder breaks these paths, and "
        "files of another dataset may be mixed in). Fix: move the files under the root, or save the Manifest "
        "beside the images.",
        PathOutsideRootWarning,
        stacklevel=2,
    )


def _detect_with_options(path: Path, options: dict[str, Any]) -> str:
    """Detection among the formats that take every option in ``options`` (see :func:`load_dataset`)."""
    takers = [a for a in DETECTION_ORDER if set(options) <= set(_keyword_options(a))]
    known = {key for a in DETECTION_ORDER for key in _keyword_options(a)}
    if not set(options) <= known:
        return detect_format(path)  # a misspelt option: the detected format's check suggests the right name
    if not takers:
        who = "; ".join(
            f"{key}: {', '.join(a.name for a in DETECTION_ORDER if key in _keyword_options(a)) or 'no format'}"
            for key in options
        )
        raise ConfigError(
            f"{path}: no dataset format takes all of the options {sorted(options)} (formats taking each: {who}). "
            "Fix: drop the options that do not belong to this dataset's format."
        )
    for adapter in takers:
        if adapter.detect(path):
            return adapter.name
    if len(takers) == 1:
        return takers[0].name
    return detect_format(path)  # raises with the list of layouts (or names a format that will refuse an option)


def _keyword_options(adapter: DatasetAdapter) -> list[str]:
    parameters = inspect.signature(adapter.load).parameters
    return [n for n, p in parameters.items() if p.kind is inspect.Parameter.KEYWORD_ONLY]


def _existing(path: Path) -> Path:
    if not path.exists():
        raise DatasetFormatError(f"{path}: no such file or folder. Fix: check the dataset path.")
    return path


def _check_options(adapter: DatasetAdapter, options: dict[str, Any]) -> None:
    allowed = _keyword_options(adapter)
    for key in options:
        if key not in allowed:
            close = get_close_matches(key, allowed, n=3)
            hint = f" Did you mean {', '.join(close)}?" if close else ""
            takes = ", ".join(allowed) if allowed else "no options"
            raise ConfigError(f"Format {adapter.name!r} has no option {key!r}.{hint} It takes: {takes}.")
