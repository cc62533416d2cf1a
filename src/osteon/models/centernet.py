"""Osteon's default detector: a light heat-map detector (CenterNet/TTFNet family) for few, small findings.

One output map at stride 4 instead of anchors on five levels:

* **Encoder**: any timm model (``features_only``, 1 input channel); the default ``mobilenetv4_conv_small``
  is the fastest of the timm encoders measured on this project's CPUs (``docs/decisions.md``).
* **Neck**: the stride-8/16/32 maps are projected to ``width`` channels and merged top-down into the
  stride-4 map (an FPN that keeps only its finest level); depthwise-separable 3×3 convolutions keep the
  stride-4 compute small.
* **Heads**: a heat map per class (sigmoid; the objects' centres) and, per cell, the distances to the four
  box sides (class-agnostic, ``exp(·) × stride``).
* **Training** (TTFNet, Liu et al. AAAI 2020, "training-time-friendly"): the heat-map target is an
  elliptical Gaussian per box (σ = 0.54·side/6, at least ``MIN_SIGMA`` cells) scored by CornerNet's
  penalty-reduced focal loss; the sides are regressed with GIoU at *every* cell inside the Gaussian,
  weighted by the Gaussian — many supervised cells per object instead of one, which is what makes it
  converge in few epochs from random weights.
* **Box quality** (``quality=True``, the plan's default since session 25): a fifth regression channel predicts
  the IoU of the cell's own box with the box it regresses (trained with BCE at the same Gaussian-weighted cells,
  the IoU-aware branch of Wu et al. 2020 / FCOS's centre-ness in spirit), and a cell's score is
  ``sqrt(heat × quality)``. The heat map says *where* a finding is; the quality says *how well this cell's box
  fits it*, so the cell whose box fits best wins the NMS and well-fitting boxes rank first.
* **Decoding**: the ``CANDIDATES`` highest-scoring cells become boxes, a class-wise NMS removes the ones that
  describe the same object as a better-scoring box, and the top ``detections_per_image`` are kept. CenterNet's
  3×3 max-pool peak search is not used: it keeps one box per peak, so a fracture whose peak box has the wrong
  extent has no second candidate, while the NMS keeps the neighbouring cells' boxes that differ from it
  (FracAtlas: test mAP@0.5 +0.001 to +0.019 on five trained models, ``docs/decisions.md``).
* **Flip test** (``flip_test=True``, the plan's default since session 26; CenterNet's own "flip testing"): in
  eval mode the network also sees the left-right mirrored image and averages the two outputs, the mirrored one
  flipped back (its left and right distances swapped). It is part of :meth:`network`, so ONNX exports it; it
  doubles the inference cost and steadies the scores of findings the network sees at one orientation only.
  The engine's validation during training switches it off (``models/test_time.py``'s ``single_pass``).

The network is fully convolutional, so it trains on crops (``patch_size``, centred on findings half of
the time; ``tasks/_detect_data.py``) and predicts on the whole letterboxed image.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.ops import batched_nms, box_area, generalized_box_iou_loss

from osteon.models.timm_features import timm_features

DEFAULT_ENCODER = "mobilenetv4_conv_small"
STRIDE = 4
GAUSSIAN_ALPHA = 0.54  # TTFNet's β: the Gaussian covers the central part of the box
MIN_SIGMA = 0.5  # cells: a box a few pixels wide still gets a peak with neighbours
BOX_LOSS_WEIGHT = 5.0  # TTFNet's weight of the GIoU term
PRIOR = 0.01  # initial heat-map probability (RetinaNet's prior: the focal loss starts stable)
CANDIDATES = 300  # cells per image that enter the NMS (1000 scored the same and cost 3× the decoding)


def _separable(width: int) -> nn.Sequential:
    """Depthwise 3×3 + pointwise 1×1, BatchNorm, ReLU."""
    return nn.Sequential(
        nn.Conv2d(width, width, 3, padding=1, groups=width, bias=False),
        nn.Conv2d(width, width, 1, bias=False),
        nn.BatchNorm2d(width),
        nn.ReLU(inplace=True),
    )


class CenterNet(nn.Module):
    """Heat-map detector behind Osteon's detector interface (``losses`` / ``forward``, see ``models.detection``).

    Args:
        encoder: timm model name (``timm:`` prefix optional).
        num_classes: Object classes (no background class).
        width: Channels of the neck and heads.
        score_threshold, nms_iou, detections_per_image: Decoding.
        quality: Also predict each cell's box IoU and score cells by ``sqrt(heat × IoU)`` (module docstring).
        flip_test: In eval mode, average the outputs of the image and its mirror image (module docstring).
        pretrained: ``None`` (random), ``"hub"`` (timm's weights; needs internet) or a local timm checkpoint.
    """

    def __init__(
        self,
        encoder: str,
        num_classes: int,
        *,
        width: int = 64,
        score_threshold: float = 0.05,
        nms_iou: float = 0.5,
        detections_per_image: int = 100,
        quality: bool = False,
        flip_test: bool = False,
        pretrained: str | None = None,
    ) -> None:
        super().__init__()
        self.encoder, self.levels = timm_features(encoder, (4, 8, 16, 32), pretrained=pretrained)
        channels = [self.encoder.feature_info.channels()[i] for i in self.levels]
        self.lateral = nn.ModuleList(nn.Conv2d(c, width, 1) for c in channels)
        self.smooth = _separable(width)
        self.heatmap = nn.Sequential(_separable(width), nn.Conv2d(width, num_classes, 1))
        self.sides = nn.Sequential(_separable(width), nn.Conv2d(width, 4 + int(quality), 1))
        nn.init.constant_(self.heatmap[-1].bias, -math.log((1 - PRIOR) / PRIOR))
        nn.init.zeros_(self.sides[-1].bias)
        self.num_classes = num_classes
        self.quality = quality
        self.flip_test = flip_test
        self.score_threshold = score_threshold
        self.nms_iou = nms_iou
        self.detections_per_image = detections_per_image
        self.feature_layer = f"encoder.{self.encoder.feature_info.module_name(self.levels[-1])}"

    @property
    def backbone(self) -> nn.Module:
        """The encoder (frozen by ``--freeze-backbone-epochs``)."""
        return self.encoder

    def network(self, images: torch.Tensor) -> torch.Tensor:
        """The tensor part (what ONNX exports): heat-map logits, side distances and (with ``quality``) the box
        quality logit, ``(B, C + 4 [+ 1], h, w)``."""
        logits, sides, quality = self.maps(images)
        return torch.cat([logits.float(), sides, *([quality.float()] if quality is not None else [])], dim=1)

    def maps(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """``(heat-map logits (B, C, h, w), side distances in input pixels (B, 4, h, w), box-quality logits
        (B, 1, h, w) or None)`` at stride 4. With ``flip_test`` in eval mode, the average over the image and its
        mirror image."""
        if self.flip_test and not self.training:
            logits, sides, quality = self._maps(torch.cat([images, images.flip(-1)]))
            mean_quality = None if quality is None else _flip_average(quality)
            return _flip_average(logits), _flip_average(sides, mirrored=(2, 1, 0, 3)), mean_quality
        return self._maps(images)

    def _maps(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        features = self.encoder(images)
        merged = None
        for level in reversed(range(4)):
            x = self.lateral[level](features[self.levels[level]])
            merged = x if merged is None else x + F.interpolate(merged, size=x.shape[-2:], mode="nearest")
        assert merged is not None
        merged = self.smooth(merged)
        regression = self.sides(merged)
        sides = torch.exp(regression[:, :4].float().clamp(max=8.0)) * STRIDE
        return self.heatmap(merged), sides, regression[:, 4:] if self.quality else None

    # -- training --------------------------------------------------------------------------------
    def losses(self, images: torch.Tensor, targets: list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
        """``{"heatmap": focal loss, "box": GIoU loss[, "quality": BCE]}`` (targets: input-pixel xyxy, 0-based
        labels)."""
        if not self.training:
            raise RuntimeError("CenterNet.losses needs train mode (model.train()); use forward() for detections.")
        logits, sides, quality = self.maps(images)
        heat, weight, box_target = _encode(targets, logits.shape, self.num_classes)
        heat_loss = _focal_loss(logits.float(), heat)
        centres = _cell_centres(logits.shape[-2:], logits.device)
        predicted = _boxes(centres, sides)  # (B, h, w, 4)
        mask = weight > 0
        if mask.any():
            giou = generalized_box_iou_loss(predicted[mask], box_target[mask], reduction="none")
            box_loss = (giou * weight[mask]).sum() / weight[mask].sum()
        else:
            box_loss = sides.sum() * 0.0
        losses = {"heatmap": heat_loss, "box": BOX_LOSS_WEIGHT * box_loss}
        if quality is not None:
            losses["quality"] = _quality_loss(quality, predicted, box_target, weight)
        return losses

    # -- inference -------------------------------------------------------------------------------
    def forward(self, images: torch.Tensor, covariates: torch.Tensor | None = None) -> list[dict[str, torch.Tensor]]:
        """Detections per image in input pixels: ``[{"boxes" (D, 4), "scores" (D,), "labels" (D,)}]``."""
        return self.decode(self.network(images), images)

    def decode(self, raw: torch.Tensor, images: torch.Tensor) -> list[dict[str, torch.Tensor]]:
        """Detections from :meth:`network`'s output (top cells, boxes, class-wise NMS, top ``detections_per_image``)."""
        logits, sides = raw[:, : self.num_classes], raw[:, self.num_classes : self.num_classes + 4]
        cell_scores = torch.sigmoid(logits.float())
        if self.quality:  # the IoU-aware score: where (heat) × how well this cell's box fits (quality)
            cell_scores = torch.sqrt(cell_scores * torch.sigmoid(raw[:, self.num_classes + 4 :].float()))
        batch, classes, h, w = cell_scores.shape
        boxes = _boxes(_cell_centres((h, w), cell_scores.device), sides).reshape(batch, h * w, 4)
        k = min(max(CANDIDATES, self.detections_per_image), classes * h * w)
        scores, index = cell_scores.reshape(batch, -1).topk(k, dim=1)
        out = []
        for b in range(batch):
            keep = scores[b] >= self.score_threshold
            s, i = scores[b][keep], index[b][keep]
            labels, cells = i // (h * w), i % (h * w)
            bx = boxes[b, cells]
            bx = torch.stack(
                [bx[:, 0].clamp(0, images.shape[-1]), bx[:, 1].clamp(0, images.shape[-2]),
                 bx[:, 2].clamp(0, images.shape[-1]), bx[:, 3].clamp(0, images.shape[-2])],
                dim=1,
            )  # fmt: skip
            kept = batched_nms(bx, s, labels, self.nms_iou)[: self.detections_per_image]
            out.append({"boxes": bx[kept], "scores": s[kept], "labels": labels[kept]})
        return out


def _flip_average(maps: torch.Tensor, mirrored: tuple[int, ...] | None = None) -> torch.Tensor:
    """The mean of the first half of a batch and its second half (the mirror images' maps) flipped back;
    ``mirrored`` reorders the second half's channels (the left and right side distances trade places)."""
    straight, flipped = maps.chunk(2)
    flipped = flipped.flip(-1)
    if mirrored is not None:
        flipped = flipped[:, list(mirrored)]
    return (straight + flipped) / 2


def _cell_centres(hw: tuple[int, int] | torch.Size, device: torch.device) -> torch.Tensor:
    """``(h, w, 2)`` input-pixel ``(x, y)`` of every stride-4 cell's centre."""
    h, w = int(hw[0]), int(hw[1])
    ys = (torch.arange(h, device=device, dtype=torch.float32) + 0.5) * STRIDE
    xs = (torch.arange(w, device=device, dtype=torch.float32) + 0.5) * STRIDE
    grid_y, grid_x = torch.meshgrid(ys, xs, indexing="ij")
    return torch.stack([grid_x, grid_y], dim=-1)


def _boxes(centres: torch.Tensor, sides: torch.Tensor) -> torch.Tensor:
    """xyxy boxes ``(B, h, w, 4)`` from cell centres and the (left, top, right, bottom) distances ``(B, 4, h, w)``."""
    d = sides.permute(0, 2, 3, 1)
    return torch.cat([centres - d[..., :2], centres + d[..., 2:]], dim=-1)


def _encode(
    targets: list[dict[str, torch.Tensor]], shape: torch.Size, num_classes: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Training targets at stride 4: heat map ``(B, C, h, w)`` (Gaussians, exactly 1 at each box's centre cell),
    box weight ``(B, h, w)`` (the Gaussian of the box that owns the cell) and that box ``(B, h, w, 4)``."""
    batch, _, h, w = shape
    device = targets[0]["boxes"].device if targets else torch.device("cpu")
    heat = torch.zeros((batch, num_classes, h, w), device=device)
    weight = torch.zeros((batch, h, w), device=device)
    owner = torch.zeros((batch, h, w, 4), device=device)
    ys = torch.arange(h, device=device, dtype=torch.float32)[:, None]
    xs = torch.arange(w, device=device, dtype=torch.float32)[None, :]
    for b, target in enumerate(targets):
        boxes, labels = target["boxes"].float(), target["labels"].long()
        if not len(boxes):
            continue
        areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
        for k in torch.argsort(areas, descending=True).tolist():  # small boxes last: they own shared cells
            x1, y1, x2, y2 = boxes[k].tolist()
            cx = min(max(int((x1 + x2) / 2 / STRIDE), 0), w - 1)
            cy = min(max(int((y1 + y2) / 2 / STRIDE), 0), h - 1)
            sx = max(GAUSSIAN_ALPHA * (x2 - x1) / STRIDE / 6, MIN_SIGMA)
            sy = max(GAUSSIAN_ALPHA * (y2 - y1) / STRIDE / 6, MIN_SIGMA)
            g = torch.exp(-((xs - cx) ** 2) / (2 * sx**2) - ((ys - cy) ** 2) / (2 * sy**2))
            g = torch.where(g > 0.01, g, torch.zeros_like(g))
            c = int(labels[k])
            heat[b, c] = torch.maximum(heat[b, c], g)
            owns = g > 0
            weight[b][owns] = g[owns]
            owner[b][owns] = boxes[k]
    return heat, weight, owner


def _quality_loss(
    logits: torch.Tensor, predicted: torch.Tensor, box_target: torch.Tensor, weight: torch.Tensor
) -> torch.Tensor:
    """BCE of the quality logits ``(B, 1, h, w)`` against the IoU of each supervised cell's predicted box with its
    target box (no gradient into the boxes), weighted like the box loss."""
    mask = weight > 0
    if not mask.any():
        return logits.sum() * 0.0
    iou = _paired_iou(predicted[mask].detach(), box_target[mask])
    bce = F.binary_cross_entropy_with_logits(logits[:, 0][mask].float(), iou, reduction="none")
    return (bce * weight[mask]).sum() / weight[mask].sum()


def _paired_iou(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """IoU of the boxes ``a[i]`` and ``b[i]`` (xyxy, ``(N, 4)`` each)."""
    wh = (torch.minimum(a[:, 2:], b[:, 2:]) - torch.maximum(a[:, :2], b[:, :2])).clamp(min=0)
    inter = wh[:, 0] * wh[:, 1]
    return inter / (box_area(a) + box_area(b) - inter).clamp(min=1e-6)


def _focal_loss(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """CornerNet's penalty-reduced focal loss (α = 2, β = 4), summed and divided by the number of objects."""
    p = torch.sigmoid(logits).clamp(1e-4, 1 - 1e-4)
    positive = target.eq(1).float()
    pos = -torch.log(p) * (1 - p) ** 2 * positive
    neg = -torch.log(1 - p) * p**2 * (1 - target) ** 4 * (1 - positive)
    return (pos.sum() + neg.sum()) / positive.sum().clamp(min=1.0)
