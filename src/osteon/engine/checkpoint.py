"""Self-describing model files: weights plus everything needed to predict without the training set-up.

Also the readability checks of a run's files: :func:`load_model_file` and :func:`check_training_checkpoint`
turn a missing, truncated or corrupt ``model.pt`` / ``last.ckpt`` into a :class:`~osteon.errors.RunDirError`
that names the file and the fix, instead of a torch or pickle traceback.
"""

from __future__ import annotations

import pickle
import platform
import zipfile
from pathlib import Path
from typing import Any

import torch

import osteon
from osteon.errors import RunDirError

FORMAT_VERSION = 1


def library_versions() -> dict[str, str]:
    import lightning
    import timm
    import torchvision

    return {
        "osteon": osteon.__version__,
        "torch": str(torch.__version__),
        "torchvision": str(torchvision.__version__),
        "timm": timm.__version__,
        "lightning": lightning.__version__,
        "python": platform.python_version(),
    }


def save_model_file(path: Path, *, state_dict: dict[str, torch.Tensor], meta: dict[str, Any]) -> None:
    """Write ``{"format_version", "state_dict", "meta"}``; meta holds config, task state, preprocessing ..."""
    payload = {
        "format_version": FORMAT_VERSION,
        "state_dict": state_dict,
        "meta": {**meta, "versions": library_versions()},
    }
    tmp = path.with_suffix(".tmp")
    torch.save(payload, tmp)
    tmp.replace(path)


def load_model_file(path: Path) -> dict[str, Any]:
    """Read a model file safely (``weights_only``: no pickled code is executed).

    Raises:
        RunDirError: the file is missing, empty, truncated or corrupt, holds pickled objects other than
            tensors and plain data, or is not an Osteon model file of this format version. The message names
            the file and how to get a good one.
    """
    path = Path(path)
    _check_torch_file(path, "model file", _MODEL_FIX)
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        raise RunDirError(
            f"{path}: refused to load: it holds pickled objects other than tensors and plain data, which an Osteon "
            f"model file never does ({_first_line(err)}). Fix: use a model.pt written by `osteon train`; do not load "
            "files from untrusted sources."
        ) from None
    except (RuntimeError, EOFError, OSError, ValueError, KeyError, zipfile.BadZipFile) as err:
        raise RunDirError(
            f"{path}: the model file cannot be read; it is truncated or corrupt ({type(err).__name__}: "
            f"{_first_line(err)}). Fix: {_MODEL_FIX}"
        ) from None
    if not isinstance(payload, dict) or "state_dict" not in payload or "meta" not in payload:
        raise RunDirError(
            f"{path}: not an Osteon model file (expected a dict with format_version, state_dict and meta; got "
            f"{type(payload).__name__}). Fix: pass the model.pt of a run written by `osteon train`."
        )
    if payload.get("format_version") != FORMAT_VERSION:
        raise RunDirError(
            f"{path}: model file format {payload.get('format_version')} is not {FORMAT_VERSION}. "
            f"Fix: use Osteon {osteon.__version__}'s `osteon train` to write it, or the Osteon version that wrote it."
        )
    return payload


def check_training_checkpoint(path: str | Path) -> Path:
    """Make sure a Lightning training checkpoint (``checkpoints/last.ckpt``) is intact before resuming from it.

    The check reads the archive's index and verifies every member's CRC (a torch checkpoint is a zip
    archive), so a truncated copy or a flipped byte is found without unpickling anything.

    Args:
        path: The checkpoint file.

    Returns:
        ``path``.

    Raises:
        RunDirError: missing, empty, truncated or corrupt; the message names the file and the fix.
    """
    path = Path(path)
    _check_torch_file(path, "training checkpoint", _CHECKPOINT_FIX)
    return path


_MODEL_FIX = (
    "copy model.pt again from where the run was trained (an interrupted copy leaves a truncated file), or "
    "train the model again with `osteon train ... --out NEW_RUN`."
)
_CHECKPOINT_FIX = (
    "copy the run's checkpoints/last.ckpt again from where it was trained, or start a new run instead of "
    "resuming (`osteon train ... --out NEW_RUN`); the damaged run cannot be resumed."
)


def _check_torch_file(path: Path, what: str, fix: str) -> None:
    """Raise :class:`RunDirError` unless ``path`` is a complete torch zip archive."""
    if not path.is_file():
        raise RunDirError(f"{path}: no such {what}. Fix: check the path; {fix}")
    size = path.stat().st_size
    if size == 0:
        raise RunDirError(f"{path}: the {what} is empty (0 bytes). Fix: {fix}")
    try:
        with zipfile.ZipFile(path) as archive:
            broken = archive.testzip()
            names = archive.namelist()
    except (zipfile.BadZipFile, OSError, EOFError, RuntimeError, ValueError) as err:
        raise RunDirError(
            f"{path}: the {what} is truncated or corrupt ({size:,} bytes; not a complete torch archive: "
            f"{_first_line(err)}). Fix: {fix}"
        ) from None
    if broken is not None:
        raise RunDirError(f"{path}: the {what} is corrupt (member {broken!r} fails its checksum). Fix: {fix}")
    if not any(name.endswith("data.pkl") for name in names):
        raise RunDirError(f"{path}: the {what} is not a torch file (its archive has no data.pkl). Fix: {fix}")


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    return (text.splitlines()[0] if text else type(err).__name__)[:300]
