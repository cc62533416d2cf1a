"""A timm encoder as a feature extractor for detectors: 1 input channel, the feature maps at given strides."""

from __future__ import annotations

from typing import Any

from torch import nn

from osteon.errors import ConfigError, UnknownNameError


def timm_features(name: str, strides: tuple[int, ...], *, pretrained: str | None) -> tuple[nn.Module, list[int]]:
    """``(encoder, indices)``: timm's ``features_only`` model of ``name`` and the indices of its maps at ``strides``.

    ``pretrained``: ``None`` (random), ``"hub"`` (timm's weights; needs internet) or a local timm checkpoint.

    Raises:
        UnknownNameError: ``name`` is not a timm model (lists the known ones).
        ConfigError: the model has no feature map at one of ``strides``.
    """
    import timm

    name = name.removeprefix("timm:")
    if not timm.is_model(name):
        raise UnknownNameError("timm model", name, timm.list_models())
    kwargs: dict[str, Any] = {"features_only": True, "in_chans": 1, "pretrained": pretrained is not None}
    if pretrained not in (None, "hub"):
        kwargs["pretrained_cfg_overlay"] = {"file": str(pretrained)}
    encoder = timm.create_model(name, **kwargs)
    reductions = list(encoder.feature_info.reduction())
    missing = [r for r in strides if r not in reductions]
    if missing:
        raise ConfigError(f"timm:{name} has no feature maps at strides {missing} (it has {reductions}).")
    return encoder, [reductions.index(r) for r in strides]
