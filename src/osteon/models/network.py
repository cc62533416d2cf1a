"""``ImageModel``: a backbone + global pooling + a head, with timm's method set and a Grad-CAM layer name."""

from __future__ import annotations

import torch
from torch import nn

from osteon.errors import ConfigError
from osteon.models.heads import FusionHead
from osteon.models.registry import ModelEntry, get_model_entry


class ImageModel(nn.Module):
    """Image (+ optional covariates) → logits.

    Follows timm's interface (``forward_features``, ``forward_head``, ``reset_classifier``) and adds
    ``feature_layer``, the dotted name of the module whose activations Grad-CAM should use. Pooling and
    any pre-logits layers are the backbone's own (timm ``forward_head(..., pre_logits=True)``), so every
    parameter is used (DDP requires it) and the head sees what the architecture's authors intended.

    Args:
        backbone: timm-style module: ``forward_features(x) -> (B, C, h, w)``,
            ``forward_head(features, pre_logits=True) -> (B, F)`` and ``num_features``.
        num_outputs: Logits per image.
        feature_layer: Dotted module name inside ``backbone`` for Grad-CAM.
        covariate_dim: Length of the covariate vector fed to the head (0 = image only).
        dropout: Dropout before the final layer.

    Shapes:
        ``x``: ``(B, in_chans, H, W)`` float; ``covariates``: ``(B, covariate_dim)``; returns ``(B, num_outputs)``.
    """

    def __init__(
        self,
        backbone: nn.Module,
        num_outputs: int,
        *,
        feature_layer: str,
        covariate_dim: int = 0,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        self.backbone = backbone
        # timm's pooled "pre-logits" width (e.g. MobileNetV3's conv_head, VGG's fc layers); else the map's channels
        self.num_features = int(getattr(backbone, "head_hidden_size", None) or backbone.num_features)  # type: ignore[arg-type]
        self.head = FusionHead(self.num_features, num_outputs, covariate_dim=covariate_dim, dropout=dropout)
        self.feature_layer = f"backbone.{feature_layer}" if feature_layer else "backbone"
        self.covariate_dim = covariate_dim

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.backbone.forward_features(x)  # type: ignore[operator]

    def forward_head(self, features: torch.Tensor, covariates: torch.Tensor | None = None) -> torch.Tensor:
        pooled = self.backbone.forward_head(features, pre_logits=True)  # type: ignore[operator]
        return self.head(pooled, covariates)

    def forward(self, x: torch.Tensor, covariates: torch.Tensor | None = None) -> torch.Tensor:
        return self.forward_head(self.forward_features(x), covariates)

    def reset_classifier(self, num_outputs: int) -> None:
        """Replace the head's last layer (fine-tuning to a new label set)."""
        self.head.fc = nn.Linear(self.head.fc.in_features, num_outputs)


def create_backbone(entry: ModelEntry, *, in_chans: int = 1, pretrained: str | None = None) -> nn.Module:
    """Build a backbone; ``pretrained`` is ``None``, a local weights file, or ``"hub"``.

    Local files are loaded through timm (``pretrained_cfg_overlay=dict(file=...)``), which also adapts
    3-channel first convolutions to ``in_chans``. ``"hub"`` downloads through timm and needs internet.
    A pretrain run directory or its ``backbone.pt`` (:mod:`osteon.models.pretrained`) must hold this
    architecture with ``in_chans`` channels; every tensor of the backbone is then the file's.
    """
    from osteon.models.pretrained import backbone_source, model_architecture

    source = backbone_source(pretrained)
    if source is not None:
        what = f"model {entry.name!r}"
        source.check(
            needs=model_architecture(entry.name), in_chans=in_chans, what=what, fix=f"train with --model {source.model}"
        )
        backbone = create_backbone(entry, in_chans=in_chans, pretrained=None)
        source.load_into(backbone, what=what)
        return backbone
    if entry.build is not None:
        if pretrained == "hub":
            raise ConfigError(f"Model {entry.name!r} has no hub weights; pass a local weights file or nothing.")
        return entry.build(in_chans=in_chans, pretrained_path=pretrained)
    import timm

    kwargs: dict[str, object] = {"num_classes": 0, "in_chans": in_chans}
    if pretrained is None:
        return timm.create_model(entry.timm_name, pretrained=False, **kwargs)
    if pretrained == "hub":
        return timm.create_model(entry.timm_name, pretrained=True, **kwargs)
    from pathlib import Path

    if not Path(pretrained).is_file():
        raise ConfigError(
            f"pretrained={pretrained!r} is neither 'hub' nor an existing weights file. "
            "Fix: pass the path of a .pth/.safetensors file saved from timm, or 'hub' on a machine with internet."
        )
    return timm.create_model(
        entry.timm_name, pretrained=True, pretrained_cfg_overlay={"file": str(pretrained)}, **kwargs
    )


def create_model(
    name: str,
    num_outputs: int,
    *,
    in_chans: int = 1,
    covariate_dim: int = 0,
    pretrained: str | None = None,
    dropout: float = 0.0,
) -> ImageModel:
    """Build a registered model by name with a head of ``num_outputs`` logits.

    Example:
        >>> model = create_model("tiny_cnn", 2)
        >>> model(torch.zeros(1, 1, 32, 32)).shape
        torch.Size([1, 2])
    """
    if num_outputs < 1:
        raise ConfigError(f"num_outputs must be ≥ 1, got {num_outputs}.")
    entry = get_model_entry(name)
    backbone = create_backbone(entry, in_chans=in_chans, pretrained=pretrained)
    return ImageModel(
        backbone, num_outputs, feature_layer=entry.feature_layer, covariate_dim=covariate_dim, dropout=dropout
    )
