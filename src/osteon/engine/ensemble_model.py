"""The model of an ensemble run: several members of one task, combined by the task (``ensemble_outputs``).

Kept apart from :mod:`osteon.engine.ensemble` (which builds ensemble runs and uses the Predictor) so that
``Predictor.from_file`` can rebuild an ensemble without an import circle.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from osteon.tasks import TaskState, build_task
from osteon.tasks.base import Task


class EnsembleModel(nn.Module):
    """``forward(image, covariates)`` of several models of one task, combined by ``task.ensemble_outputs``.

    ``feature_layer`` (for CAMs) is the first member's feature layer: maps show the gradient of the ensemble's
    output at that member's features; pass ``--target-layer members.<i>.<layer>`` for another member.
    """

    def __init__(self, members: Sequence[nn.Module], task: Task, states: Sequence[TaskState]) -> None:
        super().__init__()
        self.members = nn.ModuleList(members)
        self.task = task
        self.states = list(states)
        layer = str(getattr(members[0], "feature_layer", "") or "")
        self.feature_layer = f"members.0.{layer}" if layer else ""

    def forward(self, image: torch.Tensor, covariates: torch.Tensor | None = None) -> Any:
        outputs = [member(image, covariates) for member in self.members]
        return self.task.ensemble_outputs(outputs, self.states)


def build_ensemble_model(task: Task, meta: dict[str, Any], state_dict: dict[str, torch.Tensor]) -> EnsembleModel:
    """Rebuild an :class:`EnsembleModel` from ``model.pt``'s meta and weights (used by ``Predictor.from_file``)."""
    members = []
    states = []
    for i, member in enumerate(meta["ensemble"]["members"]):
        state = TaskState(**member["task"])
        cfg = member["config"]
        model = build_task(state).build_model(
            model=cfg["model"],
            pretrained=None,
            covariate_dim=int(member.get("covariate_dim", 0)),
            dropout=cfg.get("dropout", 0.0),
        )
        prefix = f"members.{i}."
        model.load_state_dict({k.removeprefix(prefix): v for k, v in state_dict.items() if k.startswith(prefix)})
        members.append(model)
        states.append(state)
    ensemble = EnsembleModel(members, task, states)
    ensemble.eval()
    return ensemble
