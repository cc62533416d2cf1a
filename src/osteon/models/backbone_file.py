"""``backbone.pt``: a pretrained backbone and where it came from (written by ``osteon pretrain``).

The file is a plain ``torch.save`` of a dict that loads with ``torch.load(weights_only=True)``::

    {"format": "osteon.backbone/1",
     "model": "resnet18",                 # the registry name given to --model (or "timm:<name>")
     "in_chans": 1,                       # 1 (grey) or 3 (rgb)
     "state_dict": {...},                 # of create_backbone(entry, in_chans=..., pretrained=None)
     "provenance": {"method": "simclr", "epochs": 10, "data": ["..."], "n_images": 1200, "image_size": 224,
                    "created_utc": "2026-01-01T00:00:00+00:00", "osteon_version": "0.1.0", "run": "pre1",
                    "final_loss": 4.1}}

:func:`save_backbone` writes it (atomically), :func:`read_backbone` reads and validates it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from osteon.errors import ConfigError

#: The value of the ``format`` key; a reader refuses any other.
BACKBONE_FORMAT = "osteon.backbone/1"
#: Keys every provenance record has.
PROVENANCE_KEYS = (
    "method",
    "epochs",
    "data",
    "n_images",
    "image_size",
    "created_utc",
    "osteon_version",
    "run",
    "final_loss",
)
_FIX = "Fix: pass the backbone.pt written by `osteon pretrain` (or its run directory), or run `osteon pretrain` again."


def save_backbone(
    path: str | Path, model_name: str, in_chans: int, state_dict: dict[str, Any], provenance: dict[str, Any]
) -> Path:
    """Write ``backbone.pt`` (tensors moved to the CPU; written to a temporary file first, then renamed).

    Args:
        path: The file to write (usually ``RUN/backbone.pt``).
        model_name: The registry name of the backbone (``resnet18``, ``tiny_cnn``, ``timm:convnext_atto``).
        in_chans: Input channels of the backbone (1 grey, 3 RGB).
        state_dict: The backbone's weights, as ``create_backbone(entry, in_chans=in_chans).state_dict()`` names them.
        provenance: Method, epochs, data ... (see :data:`PROVENANCE_KEYS`).

    Raises:
        ConfigError: ``in_chans`` is not 1 or 3, or the provenance lacks a key.
    """
    import torch

    if in_chans not in (1, 3):
        raise ConfigError(f"in_chans={in_chans!r}: a backbone takes 1 (grey) or 3 (rgb) channels.")
    missing = [key for key in PROVENANCE_KEYS if key not in provenance]
    if missing:
        raise ConfigError(f"backbone provenance lacks {missing}; it needs {list(PROVENANCE_KEYS)}.")
    path = Path(path)
    record = {
        "format": BACKBONE_FORMAT,
        "model": str(model_name),
        "in_chans": int(in_chans),
        "state_dict": {k: v.detach().cpu().clone() for k, v in state_dict.items()},
        "provenance": dict(provenance),
    }
    tmp = path.with_name(path.name + ".tmp")
    torch.save(record, tmp)
    tmp.replace(path)
    return path


def read_backbone(path: str | Path) -> dict[str, Any]:
    """Read and validate a ``backbone.pt`` (see the module docstring for its keys).

    Returns:
        The dict as saved: ``format``, ``model``, ``in_chans``, ``state_dict``, ``provenance``.

    Raises:
        ConfigError: the file is missing, truncated, not a torch file, or not an Osteon backbone file; the
            message names the file and the fix.
    """
    import pickle
    import zipfile

    import torch

    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: no such backbone file. {_FIX}")
    try:
        record = torch.load(path, map_location="cpu", weights_only=True)
    except (RuntimeError, EOFError, pickle.UnpicklingError, zipfile.BadZipFile, OSError, ValueError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ConfigError(
            f"{path}: cannot be read as a backbone file (truncated or not a torch file: {first}). {_FIX}"
        ) from None
    if not isinstance(record, dict) or record.get("format") != BACKBONE_FORMAT:
        found = record.get("format") if isinstance(record, dict) else type(record).__name__
        raise ConfigError(
            f"{path}: not an Osteon backbone file (format {found!r}, expected {BACKBONE_FORMAT!r}; a model.pt or a "
            f"raw state_dict is not one). {_FIX}"
        )
    problems = []
    if not isinstance(record.get("model"), str) or not record["model"]:
        problems.append("no model name")
    if record.get("in_chans") not in (1, 3):
        problems.append(f"in_chans {record.get('in_chans')!r} is not 1 or 3")
    state = record.get("state_dict")
    if not isinstance(state, dict) or not state or not all(isinstance(v, torch.Tensor) for v in state.values()):
        problems.append("no state_dict of tensors")
    provenance = record.get("provenance")
    if not isinstance(provenance, dict):
        problems.append("no provenance")
    else:
        missing = [key for key in PROVENANCE_KEYS if key not in provenance]
        if missing:
            problems.append(f"provenance lacks {missing}")
    if problems:
        raise ConfigError(f"{path}: damaged backbone file ({'; '.join(problems)}). {_FIX}")
    return record
