"""The bag-of-instances model shared by ``slices`` and ``tiled`` (:class:`osteon.models.slices.SliceModel`): the pooling
math that full-resolution classification relies on (gated attention, Ilse et al. 2018; max; mean)."""

from __future__ import annotations

import pytest
import torch

from osteon.models.slices import POOLINGS, create_slice_model


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)


@pytest.mark.parametrize("pooling", POOLINGS)
def test_a_bag_of_identical_tiles_gives_the_output_of_one_tile(pooling: str) -> None:
    model = create_slice_model("tiny_cnn", 2, pooling=pooling).eval()
    tile = torch.randn(1, 1, 1, 32, 32)
    with torch.no_grad():
        one = model(tile)
        many = model(tile.expand(1, 5, 1, 32, 32).contiguous())
    assert torch.allclose(one, many, atol=1e-5)


def test_attention_weights_sum_to_one_and_padding_weighs_nothing() -> None:
    model = create_slice_model("tiny_cnn", 2, pooling="attention").eval()
    bag = torch.randn(3, 6, 1, 32, 32)
    present = torch.ones(3, 6, dtype=torch.bool)
    present[1, 4:] = False
    present[2, 1:] = False
    with torch.no_grad():
        padded = model(bag, present)
        weights = model.last_weights
        alone = model(bag[1:2, :4])
    assert weights is not None and torch.allclose(weights.sum(1), torch.ones(3), atol=1e-6)
    assert (weights[1, 4:] == 0).all() and torch.allclose(weights[2], torch.tensor([1.0, 0, 0, 0, 0, 0]))
    assert (weights >= 0).all()
    assert torch.allclose(padded[1], alone[0], atol=1e-5)  # padding does not change the prediction


def test_the_attention_pooled_feature_is_the_weighted_mean_of_the_tile_features() -> None:
    model = create_slice_model("tiny_cnn", 3, pooling="attention").eval()
    bag = torch.randn(2, 4, 1, 32, 32)
    with torch.no_grad():
        features = model.slice_features(bag)  # (B, T, F)
        logits = model(bag)
        weights = model.last_weights
    pooled = (weights[..., None] * features).sum(1)
    assert torch.allclose(logits, model.fc(pooled), atol=1e-5)


def test_chunks_bound_the_backbone_batch_without_changing_the_output() -> None:
    """Tiles go through the backbone ``chunk`` at a time (bounded memory at inference); the result is the same."""
    model = create_slice_model("tiny_cnn", 2, pooling="attention").eval()
    bag = torch.randn(2, 7, 1, 32, 32)
    seen: list[int] = []
    forward_features = model.backbone.forward_features

    def counting(x: torch.Tensor) -> torch.Tensor:
        seen.append(int(x.shape[0]))
        return forward_features(x)

    model.backbone.forward_features = counting  # type: ignore[method-assign]
    with torch.no_grad():
        whole = model(bag)
        model.chunk = 3
        seen.clear()
        chunked = model(bag)
    assert torch.allclose(whole, chunked, atol=1e-5)
    assert seen == [3, 3, 3, 3, 2]  # 14 tiles, 3 at a time
