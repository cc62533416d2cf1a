"""Study-level wrappers: several views of a study (late fusion, missing views allowed) and both sides of a patient
(a Siamese network comparing one side with the mirrored other).

Both take a stack of images per item and a ``present`` mask, so a study with a missing view or a patient with one
knee is a normal input, not an error. Backbones are Osteon's registered ones (``osteon.models.create_backbone``),
with timm's ``forward_features`` / ``forward_head(pre_logits=True)`` contract.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from osteon.errors import ConfigError

FUSIONS = ("mean", "max", "concat")


def masked_fusion(features: torch.Tensor, present: torch.Tensor, how: str) -> torch.Tensor:
    """Fuse ``(B, V, F)`` per-view features over the present views (``present`` ``(B, V)`` bool).

    ``mean``: the mean of present views; ``max``: the element-wise max of present views; ``concat``: the views side by
    side with missing ones zeroed, ``(B, V·F)``. A study with no present view gives zeros.
    """
    mask = present.to(features.dtype).unsqueeze(-1)  # (B, V, 1)
    if how == "mean":
        return (features * mask).sum(1) / mask.sum(1).clamp_min(1)
    if how == "max":
        filled = features.masked_fill(~present.unsqueeze(-1), float("-inf")).amax(1)
        return torch.where(torch.isfinite(filled), filled, torch.zeros_like(filled))
    if how == "concat":
        return (features * mask).flatten(1)
    raise ConfigError(f"fusion={how!r} is not one of {', '.join(FUSIONS)}.")


class MultiViewModel(nn.Module):
    """Views of a study → one set of logits, by late fusion of per-view features.

    Args:
        make_backbone: Builds one backbone (called once when ``shared``, else once per view).
        views: View names in slot order (e.g. ``["AP", "lateral"]``).
        num_outputs: Logits per study.
        shared: One backbone for every view (else one per view).
        fusion: ``mean`` | ``max`` | ``concat`` (concat also sees which views are present).
        dropout: Before the final layer.

    Shapes:
        ``images`` ``(B, V, C, H, W)``, ``present`` ``(B, V)`` bool → ``(B, num_outputs)``.
    """

    def __init__(
        self,
        make_backbone: Callable[[], nn.Module],
        views: list[str],
        num_outputs: int,
        *,
        shared: bool = True,
        fusion: str = "mean",
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        if fusion not in FUSIONS:
            raise ConfigError(f"fusion={fusion!r} is not one of {', '.join(FUSIONS)}.")
        self.views = list(views)
        self.shared = shared
        self.fusion = fusion
        self.backbone = make_backbone()
        self.extra = nn.ModuleList([make_backbone() for _ in self.views[1:]]) if not shared else nn.ModuleList()
        width = int(getattr(self.backbone, "head_hidden_size", None) or self.backbone.num_features)  # type: ignore[arg-type]
        fused = width * len(self.views) + len(self.views) if fusion == "concat" else width
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(fused, num_outputs))
        self.feature_layer = "backbone"

    def view_features(self, images: torch.Tensor) -> torch.Tensor:
        """``(B, V, C, H, W)`` → ``(B, V, F)`` pooled features, view ``v`` through its backbone."""
        b, v = images.shape[:2]
        if self.shared:
            flat = images.flatten(0, 1)
            pooled = self.backbone.forward_head(self.backbone.forward_features(flat), pre_logits=True)  # type: ignore[operator]
            return pooled.view(b, v, -1)
        nets = [self.backbone, *self.extra]
        return torch.stack(
            [net.forward_head(net.forward_features(images[:, k]), pre_logits=True) for k, net in enumerate(nets)],  # type: ignore[operator]
            dim=1,
        )

    def forward(self, images: torch.Tensor, present: torch.Tensor) -> torch.Tensor:
        fused = masked_fusion(self.view_features(images), present, self.fusion)
        if self.fusion == "concat":
            fused = torch.cat([fused, present.to(fused.dtype)], dim=1)
        return self.head(fused)


class SiameseModel(nn.Module):
    """Both sides of a patient → logits per side, each side seeing its own features and the difference from the other.

    The caller mirrors one side (right → left) so that the shared backbone sees the same anatomy orientation. Each
    side's head gets ``[f_side, |f_side − f_other|, other_present]``; a missing other side gives a zero difference.

    Shapes:
        ``images`` ``(B, 2, C, H, W)`` (slot 0 left, slot 1 right-mirrored), ``present`` ``(B, 2)`` bool →
        ``(B, 2, num_outputs)``.
    """

    def __init__(self, make_backbone: Callable[[], nn.Module], num_outputs: int, *, dropout: float = 0.0) -> None:
        super().__init__()
        self.backbone = make_backbone()
        width = int(getattr(self.backbone, "head_hidden_size", None) or self.backbone.num_features)  # type: ignore[arg-type]
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(2 * width + 1, num_outputs))
        self.feature_layer = "backbone"

    def forward(self, images: torch.Tensor, present: torch.Tensor) -> torch.Tensor:
        b = images.shape[0]
        flat = images.flatten(0, 1)
        features = self.backbone.forward_head(self.backbone.forward_features(flat), pre_logits=True).view(b, 2, -1)  # type: ignore[operator]
        other = features.flip(1)
        other_present = present.flip(1).to(features.dtype).unsqueeze(-1)
        difference = (features - other).abs() * other_present
        return self.head(torch.cat([features, difference, other_present], dim=-1))


def backbone_factory(name: str, *, in_chans: int = 1, pretrained: str | None = None) -> Callable[[], nn.Module]:
    """A function that builds a fresh registered backbone ``name`` (timm or Osteon's own)."""
    from osteon.models.network import create_backbone
    from osteon.models.registry import get_model_entry

    entry = get_model_entry(name)
    return lambda: create_backbone(entry, in_chans=in_chans, pretrained=pretrained)
