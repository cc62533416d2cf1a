"""``load_dataset``: the one entry point from a path on disk to a Manifest."""

from __future__ import annotations

import inspect
import os
from difflib import get_close_matches
from pathlib import Path
from typing import Any

from osteon.data.adapters import ADAPTERS, DETECTION_ORDER
from osteon.data.adapters._base import DatasetAdapter
from osteon.data.manifest import Manifest
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
            ``images`` for ``coco``, ``per_series`` for ``dicom_dir``). Options whose value is None are
            ignored, so that a CLI can pass every option it knows.

    Returns:
        The Manifest built by the format's adapter.

    Raises:
        UnknownNameError: ``format`` is not registered (lists the close names).
        DatasetFormatError: ``path`` does not exist, is not recognised, or does not follow the layout.
        ConfigError: an option the format does not take (lists the ones it takes), or a bad option value.

    Example:
        >>> manifest = load_dataset("data/knee", format="class_folder", patient_pattern=r"^(?P<patient_id>\\d+)")
        ... # doctest: +SKIP
    """
    path = _existing(Path(path))
    name = detect_format(path) if format is None else format.strip().lower().replace("-", "_")
    adapter = ADAPTERS.get(name)
    given = {key: value for key, value in options.items() if value is not None}
    _check_options(adapter, given)
    return adapter.load(path, **given)


def _existing(path: Path) -> Path:
    if not path.exists():
        raise DatasetFormatError(f"{path}: no such file or folder. Fix: check the dataset path.")
    return path


def _check_options(adapter: DatasetAdapter, options: dict[str, Any]) -> None:
    parameters = inspect.signature(adapter.load).parameters
    allowed = [n for n, p in parameters.items() if p.kind is inspect.Parameter.KEYWORD_ONLY]
    for key in options:
        if key not in allowed:
            close = get_close_matches(key, allowed, n=3)
            hint = f" Did you mean {', '.join(close)}?" if close else ""
            takes = ", ".join(allowed) if allowed else "no options"
            raise ConfigError(f"Format {adapter.name!r} has no option {key!r}.{hint} It takes: {takes}.")
