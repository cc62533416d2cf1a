"""Multi-view fusion and the Siamese wrapper: fusion math, missing views, shared vs separate backbones."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from osteon.errors import ConfigError
from osteon.models.study import MultiViewModel, SiameseModel, backbone_factory, masked_fusion


class MeanBackbone(nn.Module):
    """Features = the image's mean and max per channel (so tests can predict the fused vector exactly)."""

    num_features = 2

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return x

    def forward_head(self, features: torch.Tensor, pre_logits: bool = True) -> torch.Tensor:
        return torch.stack([features.mean(dim=(1, 2, 3)), features.amax(dim=(1, 2, 3))], dim=1)


def test_masked_fusion_ignores_missing_views() -> None:
    features = torch.tensor([[[1.0, 4.0], [3.0, -2.0], [100.0, 100.0]]])  # (1, 3 views, 2)
    present = torch.tensor([[True, True, False]])
    torch.testing.assert_close(masked_fusion(features, present, "mean"), torch.tensor([[2.0, 1.0]]))
    torch.testing.assert_close(masked_fusion(features, present, "max"), torch.tensor([[3.0, 4.0]]))
    torch.testing.assert_close(masked_fusion(features, present, "concat"), torch.tensor([[1.0, 4.0, 3.0, -2.0, 0, 0]]))
    nothing = torch.zeros((1, 3), dtype=torch.bool)
    assert torch.equal(masked_fusion(features, nothing, "max"), torch.zeros((1, 2)))
    assert torch.equal(masked_fusion(features, nothing, "mean"), torch.zeros((1, 2)))
    with pytest.raises(ConfigError, match="not one of mean, max, concat"):
        masked_fusion(features, present, "sum")


@pytest.mark.parametrize("fusion", ["mean", "max", "concat"])
def test_missing_view_content_does_not_change_the_output(fusion: str) -> None:
    torch.manual_seed(0)
    model = MultiViewModel(MeanBackbone, ["AP", "LAT"], 3, fusion=fusion).eval()
    images = torch.rand(2, 2, 1, 8, 8)
    present = torch.tensor([[True, False], [True, True]])
    changed = images.clone()
    changed[0, 1] = 50.0  # garbage in the missing slot of study 0
    a, b = model(images, present), model(changed, present)
    torch.testing.assert_close(a[0], b[0])
    assert a.shape == (2, 3)


def test_max_fusion_finds_a_finding_seen_in_one_view_only() -> None:
    """The study output equals that of the view with the finding, whatever the other view shows."""
    model = MultiViewModel(MeanBackbone, ["AP", "LAT"], 1, fusion="max").eval()
    with torch.no_grad():
        model.head[1].weight.copy_(torch.tensor([[0.0, 1.0]]))  # logit = the max feature (the brightest pixel)
        model.head[1].bias.zero_()
    finding = torch.zeros(1, 1, 8, 8)
    finding[..., 3, 4] = 1.0
    plain = torch.zeros(1, 1, 8, 8)
    present = torch.ones(1, 2, dtype=torch.bool)
    for views in (torch.stack([finding, plain], 1), torch.stack([plain, finding], 1)):
        assert model(views, present).item() == pytest.approx(1.0)
    assert model(torch.stack([plain, plain], 1), present).item() == pytest.approx(0.0)


def test_separate_backbones_have_their_own_weights() -> None:
    make = backbone_factory("tiny_cnn")
    shared = MultiViewModel(make, ["AP", "LAT", "OBL"], 2, shared=True)
    separate = MultiViewModel(make, ["AP", "LAT", "OBL"], 2, shared=False)
    count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    backbone = count(shared.backbone)
    assert count(separate) - count(shared) == 2 * backbone
    x, present = torch.rand(2, 3, 1, 32, 32), torch.tensor([[True, False, True], [True, True, True]])
    out = separate(x, present)
    out.sum().backward()
    assert out.shape == (2, 2) and separate.extra[0].stages[0][0].weight.grad is not None


def test_siamese_compares_each_side_with_the_other() -> None:
    torch.manual_seed(0)
    model = SiameseModel(MeanBackbone, 2).eval()
    left, right = torch.rand(1, 1, 8, 8), torch.rand(1, 1, 8, 8)
    both = model(torch.stack([left, right], 1), torch.tensor([[True, True]]))
    swapped = model(torch.stack([right, left], 1), torch.tensor([[True, True]]))
    assert both.shape == (1, 2, 2)
    torch.testing.assert_close(both[0, 0], swapped[0, 1])  # one shared network: the order of sides is symmetric
    alone = model(torch.stack([left, right * 0 + 9], 1), torch.tensor([[True, False]]))
    alone2 = model(torch.stack([left, right], 1), torch.tensor([[True, False]]))
    torch.testing.assert_close(alone[0, 0], alone2[0, 0])  # a missing other side contributes nothing
    # the difference term matters: the left side's output changes with the right image
    assert not torch.allclose(
        both[0, 0], model(torch.stack([left, right * 0.1], 1), torch.tensor([[True, True]]))[0, 0]
    )
