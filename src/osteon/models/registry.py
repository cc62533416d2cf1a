"""The ``MODELS`` registry: curated image backbones with the metadata Grad-CAM and pipelines need.

Every entry is a :class:`ModelEntry`: how to build the backbone, which layer Grad-CAM should hook
(``feature_layer``), and a :class:`Weights` record describing the preprocessing the weights expect.
Any other timm model is reachable as ``timm:<name>`` (for example ``timm:regnety_004``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from torch import nn

from osteon.errors import UnknownNameError
from osteon.registry import Registry


@dataclass(frozen=True)
class Weights:
    """What pretrained weights expect and where they came from (timm ``PretrainedCfg`` in spirit).

    Attributes:
        source: ``"imagenet"`` for the library's hub weights, or a description of a local file.
        mean, std: Normalisation of the single input channel the weights were adapted to.
        input_size: The square size the weights were trained at.
        license: Licence of the weights.
    """

    source: str = "imagenet"
    mean: float = 0.449  # ImageNet RGB means averaged, as timm's adapt_input_conv sums RGB filters
    std: float = 0.226
    input_size: int = 224
    license: str = "see timm model card"


@dataclass(frozen=True)
class ModelEntry:
    """A registered backbone.

    Attributes:
        name: Registered name (lowercase, ``family_variant``).
        timm_name: Name passed to ``timm.create_model``; ``None`` for Osteon's own models.
        feature_layer: Dotted name (inside the backbone) of the last convolutional block, for Grad-CAM.
        build: Optional custom builder ``(in_chans, pretrained_path) -> nn.Module`` returning a module
            with ``forward_features`` and ``num_features`` (timm's contract).
        weights: Preprocessing the pretrained weights expect.
    """

    name: str
    timm_name: str | None
    feature_layer: str
    build: Callable[..., nn.Module] | None = None
    weights: Weights = field(default_factory=Weights)


MODELS: Registry[ModelEntry] = Registry("model")

_TIMM_PREFIX = "timm:"


def register_model(entry: ModelEntry) -> ModelEntry:
    """Add an entry to ``MODELS``; raises ``ValueError`` on a duplicate name."""
    MODELS.register(entry.name)(entry)
    return entry


def get_model_entry(name: str) -> ModelEntry:
    """Look up a registered model, or wrap ``timm:<name>`` for any timm architecture.

    Raises:
        UnknownNameError: the name is neither registered nor a known timm model; lists close names.
    """
    if name.lower().startswith(_TIMM_PREFIX):
        import timm

        timm_name = name[len(_TIMM_PREFIX) :]
        if not timm.is_model(timm_name):
            raise UnknownNameError("timm model", timm_name, timm.list_models())
        return ModelEntry(name=name, timm_name=timm_name, feature_layer="")
    return MODELS.get(name)


def list_models() -> list[str]:
    """Names of every registered model (``timm:<name>`` reaches the rest of timm)."""
    return MODELS.names()
