"""Detectors: torchvision RetinaNet, FCOS and Faster R-CNN on ResNet-FPN or timm backbones, and the
optional Ultralytics YOLO network, all behind one interface for 1-channel, letterboxed, normalised input.

:class:`Detector` has one return type per method (no "losses in train mode, detections in eval mode"):

* ``losses(images, targets) -> {name: scalar}`` — training; ``targets[i]`` = ``{"boxes": (K, 4) float xyxy,
  "labels": (K,) int64}`` in *input* pixels with 0-based class indices (``K = 0``: an image without objects);
* ``forward(images) -> [{"boxes": (D, 4), "scores": (D,), "labels": (D,)}]`` — detections in input pixels,
  0-based labels, at most ``detections_per_image`` per image with score ≥ ``score_threshold``.

``images`` is ``(B, 1, S, S)``, already normalised by Osteon (the detectors' own resize and
normalisation are switched off, so boxes need no rescaling). Nothing is downloaded: weights are random
unless ``pretrained`` names a local file (ImageNet-style ResNet state dict or a timm checkpoint) or a pretrain
run / ``backbone.pt`` of the encoder's architecture (:mod:`osteon.models.pretrained`); ``"hub"`` asks
torchvision/timm for their ImageNet weights (needs internet).
"""

from __future__ import annotations

import os
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import torch
from torch import nn
from torchvision.models import get_model, get_model_weights
from torchvision.models.detection import FCOS, FasterRCNN, RetinaNet
from torchvision.models.detection.anchor_utils import AnchorGenerator
from torchvision.models.detection.backbone_utils import BackboneWithFPN
from torchvision.models.detection.faster_rcnn import FastRCNNPredictor, TwoMLPHead
from torchvision.models.detection.transform import GeneralizedRCNNTransform
from torchvision.ops.feature_pyramid_network import FeaturePyramidNetwork, LastLevelMaxPool, LastLevelP6P7

from osteon.errors import ConfigError, UnknownNameError
from osteon.models.timm_features import timm_features

#: Architectures Osteon builds from torchvision (backend "torchvision").
TORCHVISION_DETECTORS = ("retinanet", "fcos", "faster_rcnn")
#: Osteon's own detectors (``models/centernet.py``), trained in the same loop as torchvision's (backend "torchvision").
NATIVE_DETECTORS = ("centernet",)
#: Ultralytics model configs usable with backend "yolo" (trained from their YAML, never from weights).
YOLO_DETECTORS = ("yolov8n", "yolov8s", "yolov8m", "yolo26n", "yolo26s", "yolo26n-p2")
RESNET_ENCODERS = ("resnet18", "resnet34", "resnet50", "resnet101")
#: Strides of the feature levels each architecture uses (P3–P7, or P2–P6 for Faster R-CNN).
LEVEL_STRIDES = {"retinanet": (8, 16, 32, 64, 128), "fcos": (8, 16, 32, 64, 128), "faster_rcnn": (4, 8, 16, 32, 64)}


@dataclass(frozen=True)
class DetectorSpec:
    """Everything needed to rebuild a detector (stored in the run's plan, so checkpoints describe themselves).

    Attributes:
        architecture: ``retinanet`` | ``fcos`` | ``faster_rcnn`` | ``yolov8n`` ...
        encoder: ``resnet18``/``34``/``50``/``101`` (torchvision) or ``timm:<name>``; ignored for YOLO.
        num_classes: Object classes, background not counted.
        image_size: Square input side ``S`` in pixels.
        anchor_sizes: Per feature level, the anchor sides in input pixels (RetinaNet: 3 per level; Faster
            R-CNN: 1 per level; FCOS: the level strides, one per level).
        aspect_ratios: Anchor height/width ratios, shared by all levels.
        score_threshold: Lowest score kept in the output.
        nms_iou: IoU of non-maximum suppression.
        detections_per_image: At most this many boxes per image.
        input_mean, input_std: Osteon's normalisation (YOLO undoes it: it expects 0..1 RGB).
        fpn_channels: Width of the feature pyramid and of the heads (torchvision: 256; 128 costs a quarter
            of the head's compute, which dominates on CPUs).
        proposals: Faster R-CNN: region proposals kept per image after the RPN's NMS, ``(train, test)``
            (torchvision: 2000, 1000; the RoI head's cost grows with them).
        roi_samples: Faster R-CNN: proposals sampled per training image for the RoI head (torchvision: 512).
        box_head_width: Faster R-CNN: width of the RoI head's two fully connected layers (torchvision: 1024;
            with 7×7 pooled features the first layer dominates the detector's compute on small inputs).
        quality_head: centernet: predict each cell's box IoU and rank by it (``CenterNet(quality=True)``); plans
            written before session 25 lack it, and their models load without it.
        flip_test: centernet: average the outputs of the image and its mirror image in eval mode
            (``CenterNet(flip_test=True)``); plans written before session 26 lack it and predict without it.
    """

    architecture: str
    encoder: str
    num_classes: int
    image_size: int
    anchor_sizes: tuple[tuple[float, ...], ...] = ()
    aspect_ratios: tuple[float, ...] = (0.5, 1.0, 2.0)
    score_threshold: float = 0.05
    nms_iou: float = 0.5
    detections_per_image: int = 100
    input_mean: float = 0.5
    input_std: float = 0.25
    fpn_channels: int = 256
    proposals: tuple[int, int] = (2000, 1000)
    roi_samples: int = 512
    box_head_width: int = 1024
    quality_head: bool = False
    flip_test: bool = False
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> DetectorSpec:
        known = {k: v for k, v in values.items() if k in cls.__dataclass_fields__}
        if "proposals" in known:
            known["proposals"] = tuple(int(n) for n in known["proposals"])
        known["anchor_sizes"] = tuple(tuple(float(s) for s in level) for level in known.get("anchor_sizes", ()))
        known["aspect_ratios"] = tuple(float(r) for r in known.get("aspect_ratios", (0.5, 1.0, 2.0)))
        return cls(**known)


class Detector(nn.Module):
    """A torchvision detector behind Osteon's two-method interface (see the module docstring).

    Attributes:
        detector: The torchvision model (its ``transform`` neither resizes nor normalises).
        feature_layer: Dotted name of the last backbone block, for Grad-CAM.
    """

    def __init__(self, detector: nn.Module, *, feature_layer: str, label_offset: int = 0) -> None:
        super().__init__()
        self.detector = detector
        self.feature_layer = feature_layer
        self.label_offset = label_offset  # 1 where the architecture reserves class 0 for background (Faster R-CNN)

    @property
    def backbone(self) -> nn.Module:
        """The feature extractor (frozen by ``--freeze-backbone-epochs``)."""
        return self.detector.backbone  # type: ignore[return-value]

    def losses(self, images: torch.Tensor, targets: list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
        """Training losses (the module must be in train mode). Labels are 0-based; a background index is added
        here for architectures that have one (Faster R-CNN); the focal-loss heads (RetinaNet, FCOS) need none."""
        if not self.training:
            raise RuntimeError("Detector.losses needs train mode (model.train()); use forward() for detections.")
        shifted = [{"boxes": t["boxes"].float(), "labels": t["labels"].long() + self.label_offset} for t in targets]
        return self.detector(list(images), shifted)  # type: ignore[no-any-return]

    def forward(self, images: torch.Tensor, covariates: torch.Tensor | None = None) -> list[dict[str, torch.Tensor]]:
        """Detections per image, in input pixels, 0-based labels (runs in eval mode whatever the module's mode)."""
        was_training = self.detector.training
        self.detector.eval()
        try:
            outputs = self.detector(list(images))
        finally:
            self.detector.train(was_training)
        return [
            {"boxes": o["boxes"], "scores": o["scores"], "labels": o["labels"] - self.label_offset} for o in outputs
        ]


class YoloDetector(nn.Module):
    """Ultralytics' YOLO network (built from its YAML, random weights) behind the same interface.

    Training happens in Ultralytics' own trainer (``osteon.pipelines.yolo``); this module predicts:
    it turns Osteon's normalised 1-channel input back into 0..1 three-channel images, runs the network
    and Ultralytics' NMS. Needs the ``yolo`` extra (AGPL-3.0).
    """

    def __init__(self, spec: DetectorSpec) -> None:
        super().__init__()
        yolo = _import_ultralytics()
        self.net = yolo.DetectionModel(f"{spec.architecture}.yaml", ch=3, nc=spec.num_classes, verbose=False)
        self.spec = spec
        self.feature_layer = "net.model.9"  # SPPF, the last backbone block of YOLOv8

    def losses(self, images: torch.Tensor, targets: list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
        raise ConfigError(
            "YOLO models train in Ultralytics' trainer, not in Osteon's loop. Fix: train with --backend yolo."
        )

    def forward(self, images: torch.Tensor, covariates: torch.Tensor | None = None) -> list[dict[str, torch.Tensor]]:
        yolo = _import_ultralytics()
        unit = (images.float() * self.spec.input_std + self.spec.input_mean).clamp(0, 1)
        was_training = self.net.training
        self.net.eval()
        try:
            raw = self.net(unit.expand(-1, 3, -1, -1).contiguous())
        finally:
            self.net.train(was_training)
        kept = yolo.non_max_suppression(
            raw,
            conf_thres=self.spec.score_threshold,
            iou_thres=self.spec.nms_iou,
            max_det=self.spec.detections_per_image,
            nc=self.spec.num_classes,
        )
        h, w = images.shape[-2:]
        return [  # clipped to the input canvas, like torchvision's detectors and Ultralytics' own predictor
            {
                "boxes": torch.stack(
                    [k[:, 0].clamp(0, w), k[:, 1].clamp(0, h), k[:, 2].clamp(0, w), k[:, 3].clamp(0, h)], dim=1
                ),
                "scores": k[:, 4],
                "labels": k[:, 5].long(),
            }
            for k in kept
        ]


def build_detector(spec: DetectorSpec, *, pretrained: str | None = None) -> nn.Module:
    """The detector of ``spec``; ``pretrained`` is a local backbone weights file (or ``"hub"``).

    Raises:
        UnknownNameError: unknown architecture or encoder (lists the known ones).
        ConfigError: bad anchors, or a weights file that does not fit the encoder.
    """
    if spec.architecture in YOLO_DETECTORS:
        if pretrained is not None:
            raise ConfigError(
                f"{spec.architecture} trains from its Ultralytics YAML; --pretrained {pretrained} does not apply. Fix: "
                "drop --pretrained, or use retinanet/fcos/faster_rcnn with the pretrained encoder."
            )
        return YoloDetector(spec)
    if spec.architecture == "centernet":
        return _centernet(spec, pretrained=pretrained)
    if spec.architecture not in TORCHVISION_DETECTORS:
        known = [*NATIVE_DETECTORS, *TORCHVISION_DETECTORS, *YOLO_DETECTORS]
        raise UnknownNameError("detector", spec.architecture, known)
    levels = LEVEL_STRIDES[spec.architecture]
    if len(spec.anchor_sizes) != len(levels):
        raise ConfigError(
            f"{spec.architecture} needs anchor sizes for {len(levels)} feature levels (strides {levels}); "
            f"got {len(spec.anchor_sizes)}."
        )
    backbone, feature_layer = _backbone(spec, pretrained=pretrained)
    anchors = AnchorGenerator(
        sizes=tuple(tuple(round(s) for s in level) for level in spec.anchor_sizes),
        aspect_ratios=(tuple(spec.aspect_ratios),) * len(levels)
        if spec.architecture != "fcos"
        else ((1.0,),) * len(levels),
    )
    common = {"min_size": spec.image_size, "max_size": spec.image_size, "image_mean": [0.0], "image_std": [1.0]}
    n = spec.num_classes  # focal-loss heads: one sigmoid per class, no background class
    if spec.architecture == "retinanet":
        model: nn.Module = RetinaNet(
            backbone,
            n,
            anchor_generator=anchors,
            score_thresh=spec.score_threshold,
            nms_thresh=spec.nms_iou,
            detections_per_img=spec.detections_per_image,
            **common,
        )
    elif spec.architecture == "fcos":
        model = FCOS(
            backbone,
            n,
            anchor_generator=anchors,
            score_thresh=spec.score_threshold,
            nms_thresh=spec.nms_iou,
            detections_per_img=spec.detections_per_image,
            **common,
        )
    else:
        width = spec.box_head_width
        model = FasterRCNN(
            backbone,
            None,
            rpn_anchor_generator=anchors,
            rpn_pre_nms_top_n_train=max(spec.proposals[0], 2000),
            rpn_pre_nms_top_n_test=max(spec.proposals[1], 1000),
            rpn_post_nms_top_n_train=spec.proposals[0],
            rpn_post_nms_top_n_test=spec.proposals[1],
            box_head=TwoMLPHead(backbone.out_channels * 7**2, width),  # 7×7: torchvision's RoIAlign output
            box_predictor=FastRCNNPredictor(width, n + 1),  # class 0 = background
            box_batch_size_per_image=spec.roi_samples,
            box_score_thresh=spec.score_threshold,
            box_nms_thresh=spec.nms_iou,
            box_detections_per_img=spec.detections_per_image,
            **common,
        )
    model.transform = _NoResize(spec.image_size)
    offset = 1 if spec.architecture == "faster_rcnn" else 0
    return Detector(model, feature_layer=f"detector.backbone.{feature_layer}", label_offset=offset)


def _centernet(spec: DetectorSpec, *, pretrained: str | None) -> nn.Module:
    """The heat-map detector of ``spec`` (timm encoder; a pretrain run / ``backbone.pt`` is loaded into it)."""
    from osteon.models.centernet import CenterNet
    from osteon.models.pretrained import backbone_source, encoder_architecture

    source = backbone_source(pretrained)
    what = f"centernet encoder {spec.encoder!r}"
    if source is not None:
        source.check(needs=encoder_architecture(spec.encoder), in_chans=1, what=what, fix=source.encoder_option())
    model = CenterNet(
        spec.encoder,
        spec.num_classes,
        width=int(spec.extra.get("head_width", 64)),
        score_threshold=spec.score_threshold,
        nms_iou=spec.nms_iou,
        detections_per_image=spec.detections_per_image,
        quality=spec.quality_head,
        flip_test=spec.flip_test,
        pretrained=None if source else pretrained,
    )
    if source is not None:
        source.load_into(model.encoder, what=what)
    return model


class _NoResize(GeneralizedRCNNTransform):
    """torchvision's batching transform without resizing or normalising (Osteon letterboxes and normalises)."""

    def __init__(self, size: int) -> None:
        super().__init__(min_size=size, max_size=size, image_mean=[0.0], image_std=[1.0], size_divisible=32)

    def normalize(self, image: torch.Tensor) -> torch.Tensor:
        return image

    def resize(self, image: torch.Tensor, target: dict[str, torch.Tensor] | None = None) -> tuple[Any, Any]:
        return image, target


def _backbone(spec: DetectorSpec, *, pretrained: str | None) -> tuple[nn.Module, str]:
    """The FPN backbone for ``spec`` (``out_channels`` = 256) and its last block's dotted name."""
    from osteon.models.pretrained import backbone_source, encoder_architecture

    faster = spec.architecture == "faster_rcnn"
    source = backbone_source(pretrained)  # a pretrain run / backbone.pt: checked before anything is built
    what = f"{spec.architecture} encoder {spec.encoder!r}"
    if source is not None:
        fix = source.encoder_option()
        source.check(needs=encoder_architecture(spec.encoder), in_chans=1, what=what, fix=fix)
    if spec.encoder.startswith("timm:"):
        fpn = TimmFPN(
            spec.encoder[5:], faster=faster, pretrained=None if source else pretrained, channels=spec.fpn_channels
        )
        if source is not None:
            source.load_into(fpn.body, what=what)
        return fpn, "body"
    if spec.encoder not in RESNET_ENCODERS:
        raise UnknownNameError("detection encoder", spec.encoder, [*RESNET_ENCODERS, "timm:<name>"])
    if source is not None:
        backbone = _resnet_fpn(spec, None, faster=faster)
        backbone.body.conv1 = nn.Conv2d(1, 64, kernel_size=7, stride=2, padding=3, bias=False)
        source.load_into(backbone.body, what=what)
        return backbone, "body.layer4"
    weights = None
    if pretrained == "hub":
        weights = get_model_weights(spec.encoder).DEFAULT  # type: ignore[attr-defined]
    backbone = _resnet_fpn(spec, weights, faster=faster)
    source = backbone.body.conv1.weight.detach() if weights is not None else None
    if pretrained not in (None, "hub"):
        source = _load_resnet_file(backbone.body, Path(pretrained), spec.encoder)  # type: ignore[arg-type]
    conv = nn.Conv2d(1, 64, kernel_size=7, stride=2, padding=3, bias=False)
    if source is not None:  # RGB filters summed: the response to a gray image is kept (timm's adapt_input_conv)
        with torch.no_grad():
            conv.weight.copy_(source.sum(dim=1, keepdim=True))
    backbone.body.conv1 = conv
    return backbone, "body.layer4"


def _resnet_fpn(spec: DetectorSpec, weights: Any, *, faster: bool) -> BackboneWithFPN:
    """torchvision's ResNet (``weights`` or random, trainable BatchNorm) with an FPN on the levels ``spec`` uses."""
    body = get_model(spec.encoder, weights=weights, norm_layer=nn.BatchNorm2d)
    returned = [1, 2, 3, 4] if faster else [2, 3, 4]
    stage2 = body.inplanes // 8  # type: ignore[operator]  (as torchvision's resnet_fpn_backbone)
    width = spec.fpn_channels
    return BackboneWithFPN(
        body,
        return_layers={f"layer{k}": str(v) for v, k in enumerate(returned)},
        in_channels_list=[stage2 * 2 ** (k - 1) for k in returned],
        out_channels=width,
        extra_blocks=LastLevelMaxPool() if faster else LastLevelP6P7(width, width),
    )


def _load_resnet_file(body: nn.Module, path: Path, encoder: str) -> torch.Tensor:
    """Load an ImageNet-style ResNet state dict into the FPN body; returns its (3-channel) conv1 weight."""
    if not path.is_file():
        raise ConfigError(f"pretrained={path}: no such file. Fix: pass a local {encoder} state dict, or leave it out.")
    state = torch.load(path, map_location="cpu", weights_only=True)
    state = state.get("state_dict", state) if isinstance(state, dict) else state
    ours = body.state_dict()
    usable = {k: v for k, v in state.items() if k in ours and k != "conv1.weight" and ours[k].shape == v.shape}
    if not usable or "conv1.weight" not in state:
        raise ConfigError(
            f"pretrained={path}: its keys do not fit a torchvision {encoder} (conv1.weight, layer1.0.conv1.weight). "
            "Fix: pass the state dict of the same ResNet."
        )
    body.load_state_dict(usable, strict=False)
    return state["conv1.weight"].float()


class TimmFPN(nn.Module):
    """A timm encoder (``features_only``, 1 input channel) + torchvision's FPN: ``forward(x) -> OrderedDict``.

    Uses the encoder's stride-8/16/32 maps (+ stride 4 for Faster R-CNN) and adds P6/P7 (RetinaNet, FCOS)
    or a max-pooled level (Faster R-CNN), as torchvision's ResNet-FPN does. ``out_channels`` = ``channels``.
    """

    def __init__(self, name: str, *, faster: bool, pretrained: str | None = None, channels: int = 256) -> None:
        super().__init__()
        self.body, self.indices = timm_features(name, (4, 8, 16, 32) if faster else (8, 16, 32), pretrained=pretrained)
        widths = [self.body.feature_info.channels()[i] for i in self.indices]
        extra = LastLevelMaxPool() if faster else LastLevelP6P7(channels, channels)
        self.fpn = FeaturePyramidNetwork(widths, channels, extra_blocks=extra)
        self.out_channels = channels

    def forward(self, x: torch.Tensor) -> OrderedDict[str, torch.Tensor]:
        features = self.body(x)
        return self.fpn(OrderedDict((str(j), features[i]) for j, i in enumerate(self.indices)))


def _import_ultralytics() -> SimpleNamespace:
    """Ultralytics' model class and NMS, or an error naming the extra to install.

    ``YOLO_OFFLINE`` is set (unless the caller set it) so that Ultralytics never tries the network.
    """
    os.environ.setdefault("YOLO_OFFLINE", "1")
    try:
        from ultralytics.nn.tasks import DetectionModel
        from ultralytics.utils.nms import non_max_suppression
    except ImportError as exc:
        raise ConfigError(
            f"The YOLO backend needs Ultralytics ({exc}). Fix: pip install 'osteon[yolo]' "
            "(note: Ultralytics is AGPL-3.0 licensed)."
        ) from None
    return SimpleNamespace(DetectionModel=DetectionModel, non_max_suppression=non_max_suppression)
