"""Heads that sit on pooled backbone features: linear, covariate fusion, ordinal (CORN)."""

from __future__ import annotations

import torch
from torch import nn


class FusionHead(nn.Module):
    """Linear head that can also read clinical covariates (age, sex, BMI ...).

    With ``covariate_dim == 0`` it is a plain ``Dropout → Linear``. Otherwise the covariates pass a
    small MLP and are concatenated to the image features (late fusion, as in the DenseNet +
    clinical-vector KL model of the literature).

    Args:
        in_features: Size of the pooled image features.
        num_outputs: Logits returned.
        covariate_dim: Length of the covariate vector (already normalised, missing values encoded).
        hidden: Width of the covariate MLP.
        dropout: Dropout before the final layer.

    Shapes:
        features ``(B, in_features)``, covariates ``(B, covariate_dim)`` → ``(B, num_outputs)``.
    """

    def __init__(
        self, in_features: int, num_outputs: int, *, covariate_dim: int = 0, hidden: int = 32, dropout: float = 0.0
    ) -> None:
        super().__init__()
        self.covariate_dim = covariate_dim
        self.covariate_mlp = (
            nn.Sequential(nn.Linear(covariate_dim, hidden), nn.ReLU(inplace=True)) if covariate_dim else None
        )
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(in_features + (hidden if covariate_dim else 0), num_outputs)

    def forward(self, features: torch.Tensor, covariates: torch.Tensor | None = None) -> torch.Tensor:
        if self.covariate_mlp is not None:
            if covariates is None:
                raise ValueError(
                    f"This head was built for {self.covariate_dim} covariates but none were passed; "
                    "pass the covariate vector (see Predictor, which builds it from the Manifest columns)."
                )
            features = torch.cat([features, self.covariate_mlp(covariates)], dim=1)
        return self.fc(self.dropout(features))


def corn_loss(logits: torch.Tensor, grades: torch.Tensor) -> torch.Tensor:
    """CORN loss (Shi, Cao & Raschka 2023) for ordinal grades.

    Task ``k`` (of ``K-1``) learns P(grade > k | grade > k-1) on the samples that passed task ``k-1``,
    so the implied cumulative probabilities are rank-consistent by construction.

    Args:
        logits: ``(B, K-1)`` conditional logits.
        grades: ``(B,)`` integer grades in ``[0, K-1]``.
    """
    num_tasks = logits.shape[1]
    losses = []
    for k in range(num_tasks):
        eligible = grades > k - 1
        if eligible.any():
            target = (grades[eligible] > k).float()
            losses.append(nn.functional.binary_cross_entropy_with_logits(logits[eligible, k], target, reduction="sum"))
    if not losses:
        return logits.sum() * 0.0
    return torch.stack(losses).sum() / grades.numel()


def corn_probabilities(logits: torch.Tensor) -> torch.Tensor:
    """Class probabilities ``(B, K)`` from CORN logits ``(B, K-1)``.

    P(grade > k) is the running product of the conditional probabilities; class probabilities are
    the differences of consecutive survival values.
    """
    survival = torch.cumprod(torch.sigmoid(logits.float()), dim=1)
    ones = torch.ones_like(survival[:, :1])
    zeros = torch.zeros_like(survival[:, :1])
    upper = torch.cat([ones, survival], dim=1)
    lower = torch.cat([survival, zeros], dim=1)
    return (upper - lower).clamp_min(0.0)
