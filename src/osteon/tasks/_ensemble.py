"""Combining the raw outputs of several models of one task into the outputs of their ensemble.

Each function returns outputs *in the members' own output space* (logits), chosen so that the task's usual
post-processing of the combined output gives the **mean of the members' probabilities** (or values): an ensemble is
then just another model to every later stage (predict, evaluate, explain, report).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

_EPS = 1e-7


def mean_softmax(outputs: Sequence[torch.Tensor], dim: int = 1) -> torch.Tensor:
    """``log(mean softmax)``: its softmax is the members' mean probability (classes along ``dim``)."""
    probs = torch.stack([torch.softmax(o.float(), dim=dim) for o in outputs]).mean(dim=0)
    return torch.log(probs.clamp_min(_EPS))


def mean_sigmoid(outputs: Sequence[torch.Tensor]) -> torch.Tensor:
    """``logit(mean sigmoid)``: its sigmoid is the members' mean probability per channel."""
    probs = torch.stack([torch.sigmoid(o.float()) for o in outputs]).mean(dim=0)
    return torch.logit(probs.clamp(_EPS, 1 - _EPS))


def mean_corn(outputs: Sequence[torch.Tensor]) -> torch.Tensor:
    """CORN logits ``(B, K-1)`` whose class probabilities are the members' mean class probabilities.

    Class probabilities are linear in the survival values ``P(grade > k)``, so averaging survivals averages
    the class probabilities; the conditional logits are ``logit(S_k / S_{k-1})``.
    """
    survival = torch.stack([torch.cumprod(torch.sigmoid(o.float()), dim=1) for o in outputs]).mean(dim=0)
    previous = torch.cat([torch.ones_like(survival[:, :1]), survival[:, :-1]], dim=1)
    conditional = survival / previous.clamp_min(_EPS)
    return torch.logit(conditional.clamp(_EPS, 1 - _EPS))


def mean_value(outputs: Sequence[torch.Tensor]) -> torch.Tensor:
    """The members' mean output (regression: a linear output in standardised units)."""
    return torch.stack([o.float() for o in outputs]).mean(dim=0)
