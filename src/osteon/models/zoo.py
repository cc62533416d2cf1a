"""The curated backbones. Registration is this explicit list; nothing is discovered by name search."""

from __future__ import annotations

import itertools

import torch
from torch import nn

from osteon.models.registry import ModelEntry, register_model


class TinyCNN(nn.Module):
    """A four-block CNN (~100 k parameters) for demos, tests and CPU smoke runs.

    Follows timm's backbone contract: ``forward_features(x) -> (B, num_features, H/16, W/16)`` and
    ``forward_head(features, pre_logits=True) -> (B, num_features)`` (global average pooling).
    """

    def __init__(self, in_chans: int = 1, width: int = 16) -> None:
        super().__init__()
        chans = [in_chans, width, width * 2, width * 4, width * 8]
        blocks = []
        for cin, cout in itertools.pairwise(chans):
            blocks.append(
                nn.Sequential(
                    nn.Conv2d(cin, cout, 3, padding=1, bias=False),
                    nn.BatchNorm2d(cout),
                    nn.ReLU(inplace=True),
                    nn.MaxPool2d(2),
                )
            )
        self.stages = nn.Sequential(*blocks)
        self.num_features = chans[-1]

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.stages(x)

    def forward_head(self, features: torch.Tensor, pre_logits: bool = True) -> torch.Tensor:
        return features.mean(dim=(2, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))


def _tiny_cnn(in_chans: int = 1, pretrained_path: str | None = None) -> nn.Module:
    model = TinyCNN(in_chans=in_chans)
    if pretrained_path:
        model.load_state_dict(torch.load(pretrained_path, map_location="cpu", weights_only=True))
    return model


# name, timm name, last conv block (Grad-CAM target) inside the timm backbone
_TIMM_MODELS = [
    ("resnet18", "resnet18", "layer4"),
    ("resnet34", "resnet34", "layer4"),
    ("resnet50", "resnet50", "layer4"),
    ("densenet121", "densenet121", "features.norm5"),
    ("efficientnet_b0", "efficientnet_b0", "conv_head"),
    ("efficientnet_b3", "efficientnet_b3", "conv_head"),
    ("vgg16_bn", "vgg16_bn", "features"),
    ("inception_v3", "inception_v3", "Mixed_7c"),
    ("convnext_tiny", "convnext_tiny", "stages.3"),
    ("mobilenetv3_small_100", "mobilenetv3_small_100", "blocks"),
]

for _name, _timm_name, _layer in _TIMM_MODELS:
    register_model(ModelEntry(name=_name, timm_name=_timm_name, feature_layer=_layer))

register_model(ModelEntry(name="tiny_cnn", timm_name=None, feature_layer="stages.3", build=_tiny_cnn))
