"""2.5D slice models and exam-level fusion: the fusion math by hand, and a planted one-slice finding recovered."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from osteon.errors import ConfigError
from osteon.models.slices import ExamFusion, create_slice_model


def test_fusion_math_by_hand() -> None:
    fusion = ExamFusion(["sag", "cor"], np.array([2.0, -1.0]), 0.5, np.array([0.0, 0.0]))
    p = np.array([[0.8, 0.3]])
    logit = np.log(p / (1 - p))
    expected = 1 / (1 + np.exp(-(2.0 * logit[0, 0] - 1.0 * logit[0, 1] + 0.5)))
    assert fusion.predict_proba(p)[0] == pytest.approx(expected)
    # a missing series takes the training mean of its log-odds (here 0: probability 0.5)
    assert fusion.predict_proba(np.array([[0.8, np.nan]]))[0] == pytest.approx(
        1 / (1 + np.exp(-(2.0 * logit[0, 0] + 0.5)))
    )
    restored = ExamFusion.from_dict(fusion.to_dict())
    assert restored.predict_proba(p)[0] == pytest.approx(expected)
    with pytest.raises(ConfigError, match=r"\(N, 2\)"):
        fusion.predict_proba(np.zeros((1, 3)))


def test_fusion_learns_which_series_carries_the_finding() -> None:
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 300)
    informative = np.clip(0.5 + 0.35 * (2 * y - 1) + rng.normal(0, 0.15, 300), 0.01, 0.99)
    scores = np.stack([informative, rng.uniform(0.05, 0.95, 300), rng.uniform(0.05, 0.95, 300)], axis=1)
    scores[::7, 1] = np.nan
    fusion = ExamFusion(["sag", "cor", "ax"]).fit(scores, y)
    assert abs(fusion.coef[0]) > 5 * max(abs(fusion.coef[1]), abs(fusion.coef[2]))
    from osteon.metrics import roc_auc_score

    assert roc_auc_score(y, fusion.predict_proba(scores)) > 0.95


@pytest.mark.parametrize("pooling", ["max", "mean", "attention"])
def test_slice_model_shapes_and_masks(pooling: str) -> None:
    model = create_slice_model("tiny_cnn", 2, pooling=pooling)
    x = torch.rand(3, 5, 1, 32, 32)
    present = torch.ones(3, 5, dtype=torch.bool)
    present[0, 3:] = False
    out = model(x, present)
    assert out.shape == (3, 2) and model.last_weights is not None and model.last_weights.shape == (3, 5)
    assert torch.allclose(model.last_weights[0, 3:], torch.zeros(2)) or pooling == "max"
    out.sum().backward()
    # grey (B, S, H, W) input is accepted
    assert model(torch.rand(2, 4, 32, 32)).shape == (2, 2)
    with pytest.raises(ConfigError, match="pooling"):
        create_slice_model("tiny_cnn", 1, pooling="median")


@pytest.mark.slow
def test_attention_finds_the_planted_slice() -> None:
    """Trained on one series, the 2.5D model detects the one-slice finding and attends to that slice."""
    from osteon.data.phantom_exams import make_exam_phantoms
    from osteon.metrics import roc_auc_score

    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    images, labels, where = make_exam_phantoms(rng, 96, slices=6, size=32)
    x = torch.from_numpy(images[:, 0])  # the sagittal series, (N, S, H, W)
    y = torch.from_numpy(labels).float()
    model = create_slice_model("tiny_cnn", 1, pooling="attention")
    optimiser = torch.optim.Adam(model.parameters(), lr=3e-3)
    for _ in range(12):
        for start in range(0, 64, 16):
            optimiser.zero_grad()
            loss = torch.nn.functional.binary_cross_entropy_with_logits(
                model(x[start : start + 16])[:, 0], y[start : start + 16]
            )
            loss.backward()
            optimiser.step()
    model.eval()
    with torch.no_grad():
        scores = torch.sigmoid(model(x[64:])[:, 0]).numpy()
    weights = model.last_weights.numpy()
    assert roc_auc_score(labels[64:], scores) > 0.9
    positives = np.flatnonzero(labels[64:])
    hits = np.mean(weights[positives].argmax(1) == where[64:][positives])
    assert hits > 0.7, hits
