"""``--pretrained RUN_OR_FILE``: self-supervised backbones (``osteon pretrain``) loaded into every task's model.

:func:`backbone_source` turns the ``pretrained`` value into a :class:`BackboneSource` when it names a pretrain run
directory (holding ``backbone.pt``) or an ``osteon.backbone/1`` file, and into ``None`` for nothing, ``"hub"`` and
plain weight files (those keep their old meaning). The model builders then call :meth:`BackboneSource.check`
(architecture and channel count, before anything is built) and :meth:`BackboneSource.load_into` (every tensor
of the receiving module comes from the file, or a :class:`~osteon.errors.ConfigError` says which do not).

Architectures are compared by their timm name: a classifier's ``resnet18`` (timm), a segmentation encoder
``resnet18`` (smp's ResNet encoder, which names its layers ``conv1``/``bn1``/``layer1..4`` like timm) or
``tu-resnet18`` (smp's timm encoder), and a detector's ``resnet18`` (torchvision's ResNet body, same names) or
``timm:resnet18`` all need a backbone pretrained as ``resnet18``. timm's feature extractors (``features_only``)
rename a top-level sequence ``stages.0`` to ``stages_0``; :meth:`BackboneSource.load_into` maps those names.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import torch
from torch import nn

from osteon.errors import ConfigError

__all__ = ["BACKBONE_FILE", "BackboneSource", "backbone_source", "encoder_architecture", "model_architecture"]

#: The file a pretrain run directory holds.
BACKBONE_FILE = "backbone.pt"
#: smp encoders whose native implementation has timm's ResNet parameter names.
_SMP_RESNETS = ("resnet18", "resnet34", "resnet50", "resnet101", "resnet152")


@dataclass(frozen=True)
class BackboneSource:
    """A backbone file named by ``--pretrained`` (validated by ``read_backbone``).

    Attributes:
        path: The ``backbone.pt`` file.
        model: The registry name it was pretrained as (``resnet18``, ``tiny_cnn``, ``timm:convnext_atto``).
        in_chans: Its input channels (1 grey, 3 RGB).
        state_dict: Its weights (names of ``create_backbone(model)``).
        provenance: Method, epochs, data, n_images ... as ``osteon pretrain`` wrote them.
        sha256: Hex digest of the file (what the fine-tuned run records).
    """

    path: Path
    model: str
    in_chans: int
    state_dict: dict[str, torch.Tensor] = field(repr=False)
    provenance: dict[str, Any]
    sha256: str

    @property
    def architecture(self) -> str:
        """The timm name of the backbone (``tiny_cnn`` for Osteon's own)."""
        return model_architecture(self.model)

    @property
    def method(self) -> str:
        return str(self.provenance.get("method", "?"))

    def describe(self) -> str:
        """One line: what the file holds (model, channels, method, epochs)."""
        return (
            f"a {self.model} backbone for {self.in_chans}-channel input, pretrained with {self.method} "
            f"for {self.provenance.get('epochs', '?')} epochs"
        )

    def record(self) -> dict[str, Any]:
        """The provenance record a fine-tuned run keeps (``state.json`` › ``pretrained``)."""
        keys = ("method", "epochs", "data", "n_images", "image_size", "created_utc", "run", "final_loss")
        return {
            "path": str(self.path),
            "sha256": self.sha256,
            "model": self.model,
            "in_chans": self.in_chans,
            **{k: self.provenance.get(k) for k in keys},
        }

    def encoder_option(self) -> str:
        """How to build this backbone as a segmentation or detection encoder (for error messages)."""
        if _is_osteon_model(self.model):
            return f"use a backbone pretrained from a timm model (Osteon's {self.model} is no encoder)"
        name = self.architecture if self.architecture in _SMP_RESNETS else f"timm:{self.architecture}"
        return f"train with --encoder {name}"

    def check(self, *, needs: str, in_chans: int, what: str, fix: str) -> None:
        """Refuse a backbone of another architecture or channel count.

        Args:
            needs: The timm architecture the receiving model needs (:func:`model_architecture`,
                :func:`encoder_architecture`).
            in_chans: The receiving model's input channels.
            what: What the task builds, for the message (``"model 'resnet18'"``, ``"unet encoder 'resnet18'"``).
            fix: How to build the file's architecture instead (``"train with --model tiny_cnn"``).

        Raises:
            ConfigError: names the file, what it holds, what the task needs and the fix.
        """
        problems = []
        if needs != self.architecture:
            problems.append(f"architecture {self.architecture!r} ≠ {needs!r}")
        if in_chans != self.in_chans:
            problems.append(f"{self.in_chans} input channel(s) ≠ {in_chans}")
        if not problems:
            return
        fixes = [fix] if needs != self.architecture else []
        if in_chans != self.in_chans:
            fixes.append(f"train with --channels {'rgb' if self.in_chans == 3 else 'grey'}")
        raise ConfigError(
            f"--pretrained {self.path}: it holds {self.describe()}, but this run builds {what} for {in_chans}-channel "
            f"input ({'; '.join(problems)}). Fix: {' and '.join(fixes)}, or pretrain a backbone that matches "
            f"(osteon pretrain --model {_model_option(needs)} --channels {'rgb' if in_chans == 3 else 'grey'})."
        )

    def load_into(self, module: nn.Module, *, what: str) -> int:
        """Copy the file's tensors into ``module`` (every parameter and buffer of ``module`` must get one).

        Names are matched as they are, without a ``model.`` prefix (smp's timm encoder), and with timm's
        ``features_only`` renaming of a top-level sequence (``stages.0`` → ``stages_0``). Tensors of the file
        that the module lacks (a pooling head a feature extractor drops) are ignored.

        Returns:
            The number of tensors loaded.

        Raises:
            ConfigError: some tensor of ``module`` has no counterpart of the same shape in the file.
        """
        source = self.state_dict
        target = module.state_dict()
        loaded: dict[str, torch.Tensor] = {}
        missing: list[str] = []
        for key, value in target.items():
            match = _counterpart(key, source)
            if match is None or source[match].shape != value.shape:
                missing.append(key)
            else:
                loaded[key] = source[match]
        if missing:
            raise ConfigError(
                f"--pretrained {self.path}: {len(missing)} of the {len(target)} tensors of {what} have no counterpart "
                f"in the file (e.g. {', '.join(missing[:3])}); it holds {self.describe()}. Fix: pretrain the "
                "backbone this run builds, or choose the model that was pretrained."
            )
        module.load_state_dict(loaded, strict=True)
        return len(loaded)


def _counterpart(key: str, source: dict[str, torch.Tensor]) -> str | None:
    """The name in ``source`` of the receiving module's tensor ``key`` (``None`` when there is none)."""
    bare = key.removeprefix("model.")
    candidates = [key, bare]
    head, dot, rest = bare.partition(".")
    if dot and "_" in head:  # timm features_only: "stages_0.blocks..." was "stages.0.blocks..."
        name, _, index = head.rpartition("_")
        candidates.append(f"{name}.{index}.{rest}")
    return next((c for c in candidates if c in source), None)


def _model_option(architecture: str) -> str:
    """The ``--model`` value of ``osteon pretrain`` that builds a timm ``architecture``."""
    if architecture.startswith("smp:"):
        return "<a timm model>"
    from osteon.models.registry import MODELS

    return architecture if architecture in MODELS else f"timm:{architecture}"


def _is_osteon_model(name: str) -> bool:
    try:
        from osteon.models.registry import get_model_entry

        return get_model_entry(name).timm_name is None
    except Exception:
        return False


def model_architecture(name: str) -> str:
    """The timm architecture of a registered model or ``timm:<name>`` (Osteon's own models: their name)."""
    if name.lower().startswith("timm:"):
        return name[len("timm:") :]
    try:
        from osteon.models.registry import get_model_entry

        entry = get_model_entry(name)
    except Exception:  # an unknown name is reported by the builder, with close names
        return name
    return entry.timm_name or entry.name


def encoder_architecture(encoder: str | None) -> str:
    """The timm architecture of a segmentation or detection encoder (``"?"`` for smp's own non-ResNets).

    Example:
        >>> encoder_architecture("tu-convnext_atto"), encoder_architecture("timm:resnet18")
        ('convnext_atto', 'resnet18')
    """
    name = (encoder or "").strip()
    for prefix in ("tu-", "timm:"):
        if name.startswith(prefix):
            return name[len(prefix) :]
    return name if name in _SMP_RESNETS else f"smp:{name}"


def backbone_source(pretrained: str | Path | None) -> BackboneSource | None:
    """The backbone file that ``--pretrained`` names, or ``None`` for nothing, ``"hub"`` or a plain weights file.

    A directory must hold ``backbone.pt`` (the run directory of ``osteon pretrain``); a file is a backbone file
    when it is an ``osteon.backbone/1`` dict (``.safetensors`` files never are).

    Raises:
        ConfigError: a directory without ``backbone.pt``, or a damaged backbone file.
    """
    if pretrained is None or str(pretrained) in ("", "hub"):
        return None
    path = Path(pretrained)
    if path.is_dir():
        if not (path / BACKBONE_FILE).is_file():
            raise ConfigError(
                f"--pretrained {path}: a directory without {BACKBONE_FILE}. Fix: pass the run directory of "
                "`osteon pretrain` (or its backbone.pt), a weights file, or 'hub'."
            )
        path = path / BACKBONE_FILE
    elif not path.is_file() or path.suffix == ".safetensors" or not _looks_like_backbone(path):
        return None  # a plain weights file (or a missing one): the builders keep their own handling and errors
    stat = path.stat()
    return _read(str(path.resolve()), stat.st_mtime_ns, stat.st_size)


def _looks_like_backbone(path: Path) -> bool:
    try:
        record = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except Exception:  # not a torch zip file: the builders' loaders say what is wrong with it
        return False
    return isinstance(record, dict) and str(record.get("format", "")).startswith("osteon.backbone/")


@lru_cache(maxsize=4)
def _read(path: str, mtime_ns: int, size: int) -> BackboneSource:
    from osteon.models.backbone_file import read_backbone

    record = read_backbone(path)
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return BackboneSource(
        path=Path(path),
        model=str(record["model"]),
        in_chans=int(record["in_chans"]),
        state_dict=dict(record["state_dict"]),
        provenance=dict(record["provenance"]),
        sha256=digest.hexdigest(),
    )
