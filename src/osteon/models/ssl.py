"""Self-supervised methods around an Osteon backbone: SimCLR, BYOL, DINO, MAE with lightly's heads and losses.

Each method is an ``nn.Module`` that owns the backbone (``method.backbone``: the module that
:func:`osteon.models.network.create_backbone` returns, whose ``state_dict`` goes into ``backbone.pt``), the
projection/prediction heads, and any momentum (teacher) copies, so that a Lightning checkpoint of the module holds
everything a resumed run needs. ``loss(views, epoch=..., progress=...)`` takes the augmented views of one batch.

The losses, heads, momentum update and masking come from `lightly <https://github.com/lightly-ai/lightly>`_
(extra ``pretrain``); nothing here re-implements them.
"""

from __future__ import annotations

import copy
from typing import Any, ClassVar

import torch
from torch import nn

from osteon.errors import ConfigError

#: Every method ``osteon pretrain --method`` takes.
METHODS = ("simclr", "byol", "dino", "mae")


def require_lightly() -> None:
    """Raise a ConfigError naming the extra when lightly is not installed."""
    import importlib.util

    if importlib.util.find_spec("lightly") is None:
        raise ConfigError(
            "self-supervised pretraining needs the 'lightly' library. Fix: pip install 'osteon[pretrain]' "
            "(or pip install 'lightly>=1.5,<2')."
        )


def feature_dim(backbone: nn.Module) -> int:
    """Width of the backbone's pooled features (timm's ``head_hidden_size`` where it has one, as ImageModel)."""
    return int(getattr(backbone, "head_hidden_size", None) or backbone.num_features)  # type: ignore[arg-type]


def is_vit(backbone: nn.Module) -> bool:
    """Whether the backbone is a timm Vision Transformer (what MAE masks patch tokens of)."""
    try:
        from timm.models.vision_transformer import VisionTransformer
    except ImportError:  # pragma: no cover - timm is a core dependency
        return False
    return isinstance(backbone, VisionTransformer)


def vit_image_size(backbone: nn.Module) -> int | None:
    """The square input size a timm ViT's position embedding was built for (None for other backbones)."""
    if not is_vit(backbone):
        return None
    size = backbone.patch_embed.img_size  # type: ignore[union-attr]
    return int(size[0] if isinstance(size, tuple | list) else size)


class SSLMethod(nn.Module):
    """Common part: the backbone and its pooled embedding. Subclasses add heads and the loss.

    Class attributes: ``name``; ``global_views`` (full-size views per image); ``local_views`` (small crops, DINO).
    """

    name: ClassVar[str] = ""
    global_views: ClassVar[int] = 2
    local_views: ClassVar[int] = 0

    def __init__(self, backbone: nn.Module) -> None:
        super().__init__()
        self.backbone = backbone
        self.dim = feature_dim(backbone)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, C, H, W)`` → ``(B, F)`` pooled features (timm backbones built with ``num_classes=0``)."""
        return self.backbone.forward_head(self.backbone.forward_features(x), pre_logits=True)  # type: ignore[operator]

    def loss(self, views: list[torch.Tensor], *, epoch: int, progress: float) -> torch.Tensor:
        """The loss of one batch; ``views[i]`` is ``(B, C, S, S)``; ``progress`` runs from 0 to 1 over training."""
        raise NotImplementedError

    def after_backward(self, epoch: int) -> None:
        """Called after each backward pass (DINO freezes its last layer in the first epoch)."""


class SimCLR(SSLMethod):
    """SimCLR: NT-Xent between two views' projections (temperature 0.2; other images of the batch are negatives)."""

    name = "simclr"

    def __init__(self, backbone: nn.Module) -> None:
        super().__init__(backbone)
        from lightly.loss import NTXentLoss
        from lightly.models.modules import SimCLRProjectionHead

        self.projection = SimCLRProjectionHead(self.dim, max(self.dim, 128), 128)
        self.criterion = NTXentLoss(temperature=0.2)

    def loss(self, views: list[torch.Tensor], *, epoch: int, progress: float) -> torch.Tensor:
        z0, z1 = (self.projection(self.embed(v)) for v in views[:2])
        return self.criterion(z0, z1)


class BYOL(SSLMethod):
    """BYOL: an online network predicts a momentum teacher's projection of the other view (no negatives).

    The teacher's momentum follows lightly's cosine schedule from 0.99 to 1 over training.
    """

    name = "byol"

    def __init__(self, backbone: nn.Module) -> None:
        super().__init__(backbone)
        from lightly.loss import NegativeCosineSimilarity
        from lightly.models.modules import BYOLPredictionHead, BYOLProjectionHead
        from lightly.models.utils import deactivate_requires_grad

        hidden = max(2 * self.dim, 256)
        self.projection = BYOLProjectionHead(self.dim, hidden, 128)
        self.prediction = BYOLPredictionHead(128, hidden, 128)
        self.backbone_momentum = copy.deepcopy(backbone)
        self.projection_momentum = copy.deepcopy(self.projection)
        deactivate_requires_grad(self.backbone_momentum)
        deactivate_requires_grad(self.projection_momentum)
        self.criterion = NegativeCosineSimilarity()

    def _teacher(self, x: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            features = self.backbone_momentum.forward_head(  # type: ignore[operator]
                self.backbone_momentum.forward_features(x),  # type: ignore[operator]
                pre_logits=True,
            )
            return self.projection_momentum(features).detach()

    def loss(self, views: list[torch.Tensor], *, epoch: int, progress: float) -> torch.Tensor:
        from lightly.models.utils import update_momentum
        from lightly.utils.scheduler import cosine_schedule

        momentum = cosine_schedule(int(progress * 1000), 1000, 0.99, 1.0)
        update_momentum(self.backbone, self.backbone_momentum, m=momentum)
        update_momentum(self.projection, self.projection_momentum, m=momentum)
        x0, x1 = views[:2]
        p0 = self.prediction(self.projection(self.embed(x0)))
        p1 = self.prediction(self.projection(self.embed(x1)))
        return 0.5 * (self.criterion(p0, self._teacher(x1)) + self.criterion(p1, self._teacher(x0)))


class DINO(SSLMethod):
    """DINO: self-distillation from a momentum teacher (global views) to the student (global + local views).

    Two global views at the image size and four local crops at half of it (a ViT, whose position embedding has
    one size, gets its local crops at the full size). Output dimension 2048, teacher momentum 0.996 → 1; the
    head's last layer is frozen during the first epoch, as in the paper.
    """

    name = "dino"
    local_views = 4

    def __init__(self, backbone: nn.Module) -> None:
        super().__init__(backbone)
        from lightly.loss import DINOLoss
        from lightly.models.modules import DINOProjectionHead
        from lightly.models.utils import deactivate_requires_grad

        self.head = DINOProjectionHead(self.dim, 512, 64, 2048, freeze_last_layer=1)
        self.backbone_momentum = copy.deepcopy(backbone)
        self.head_momentum = DINOProjectionHead(self.dim, 512, 64, 2048)
        self.head_momentum.load_state_dict(self.head.state_dict())
        deactivate_requires_grad(self.backbone_momentum)
        deactivate_requires_grad(self.head_momentum)
        self.criterion = DINOLoss(output_dim=2048, warmup_teacher_temp_epochs=5)

    def loss(self, views: list[torch.Tensor], *, epoch: int, progress: float) -> torch.Tensor:
        from lightly.models.utils import update_momentum
        from lightly.utils.scheduler import cosine_schedule

        momentum = cosine_schedule(int(progress * 1000), 1000, 0.996, 1.0)
        update_momentum(self.backbone, self.backbone_momentum, m=momentum)
        update_momentum(self.head, self.head_momentum, m=momentum)
        with torch.no_grad():
            teacher = [
                self.head_momentum(
                    self.backbone_momentum.forward_head(  # type: ignore[operator]
                        self.backbone_momentum.forward_features(v),  # type: ignore[operator]
                        pre_logits=True,
                    )
                ).detach()
                for v in views[: self.global_views]
            ]
        student = [self.head(self.embed(v)) for v in views]
        return self.criterion(teacher, student, epoch=epoch)

    def after_backward(self, epoch: int) -> None:
        self.head.cancel_last_layer_gradients(current_epoch=epoch)


class MAE(SSLMethod):
    """MAE: a ViT encodes 25 % of the patches; a one-block decoder predicts the pixels of the masked rest.

    Only timm Vision Transformers (``timm:vit_*``); one view per image (cropped and intensity-augmented).
    """

    name = "mae"
    global_views = 1

    def __init__(self, backbone: nn.Module) -> None:
        super().__init__(backbone)
        from lightly.models.modules import MaskedVisionTransformerDecoderTIMM, MaskedVisionTransformerTIMM

        self.encoder = MaskedVisionTransformerTIMM(vit=backbone)  # shares the backbone's parameters
        vit: Any = backbone
        self.patch_size = int(vit.patch_embed.patch_size[0])
        self.mask_ratio = 0.75
        decoder_dim = 256
        self.decoder_embed = nn.Linear(vit.embed_dim, decoder_dim)
        self.decoder = MaskedVisionTransformerDecoderTIMM(
            num_patches=vit.patch_embed.num_patches,
            embed_dim=decoder_dim,
            depth=1,
            num_heads=8,
            num_prefix_tokens=vit.num_prefix_tokens,
        )
        self.prediction = nn.Linear(decoder_dim, self.patch_size**2 * int(vit.patch_embed.proj.in_channels))

    def loss(self, views: list[torch.Tensor], *, epoch: int, progress: float) -> torch.Tensor:
        from lightly.models import utils

        images = views[0]
        batch = images.shape[0]
        length = self.encoder.sequence_length
        idx_keep, idx_mask = utils.random_token_mask(
            size=(batch, length), mask_ratio=self.mask_ratio, device=images.device
        )
        encoded = self.encoder.encode(images=images, idx_keep=idx_keep)
        tokens = utils.repeat_token(self.decoder.mask_token, (batch, length))
        tokens = utils.set_at_index(tokens, idx_keep, self.decoder_embed(encoded).type_as(tokens))
        decoded = self.decoder.decode(self.decoder.add_pos_embed(tokens))
        predicted = self.prediction(utils.get_at_index(decoded, idx_mask))
        prefix = self.decoder.num_prefix_tokens
        target = utils.get_at_index(utils.patchify(images, self.patch_size), idx_mask - prefix)
        return nn.functional.mse_loss(predicted, target)


_CLASSES: dict[str, type[SSLMethod]] = {"simclr": SimCLR, "byol": BYOL, "dino": DINO, "mae": MAE}


def build_method(method: str, backbone: nn.Module, *, model_name: str) -> SSLMethod:
    """The self-supervised method ``method`` around ``backbone``.

    Raises:
        ConfigError: unknown method, lightly missing, or MAE with a backbone that is not a ViT.
    """
    if method not in _CLASSES:
        raise ConfigError(f"--method {method!r} is not one of {', '.join(METHODS)}.")
    require_lightly()
    if method == "mae" and not is_vit(backbone):
        raise ConfigError(
            f"--method mae masks the patch tokens of a Vision Transformer; {model_name!r} is not one. Fix: use "
            "--model timm:vit_tiny_patch16_224 (or another timm:vit_* model) for mae, or --method simclr, byol or "
            "dino with a CNN."
        )
    return _CLASSES[method](backbone)
