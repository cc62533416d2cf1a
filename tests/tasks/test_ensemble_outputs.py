"""Each task's ensemble_outputs gives the mean of its members' probabilities (or values)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from osteon.errors import ConfigError
from osteon.models.heads import corn_probabilities
from osteon.tasks import TaskState, build_task


def outputs(shape: tuple[int, ...], n: int = 3) -> list[torch.Tensor]:
    gen = torch.Generator().manual_seed(0)
    return [torch.randn(*shape, generator=gen) * 2 for _ in range(n)]


def test_classify_softmax_and_multilabel() -> None:
    task = build_task(TaskState("classify", "label", ["a", "b", "c"], None, False, "ce"))
    outs = outputs((4, 3))
    combined = task.ensemble_outputs(outs)
    np.testing.assert_allclose(task.scores(combined), np.mean([task.scores(o) for o in outs], axis=0), atol=1e-6)
    multi = build_task(TaskState("classify", "label", ["a", "b"], None, True, "bce"))
    combined = multi.ensemble_outputs(outs[:2] and [o[:, :2] for o in outs])
    np.testing.assert_allclose(
        multi.scores(combined), np.mean([multi.scores(o[:, :2]) for o in outs], axis=0), atol=1e-6
    )


@pytest.mark.parametrize("loss", ["corn", "ce"])
def test_grade_corn_and_softmax(loss: str) -> None:
    task = build_task(TaskState("grade", "label", ["0", "1", "2", "3", "4"], None, False, loss))
    outs = outputs((6, 4 if loss == "corn" else 5))
    expected = np.mean([task.scores(o) for o in outs], axis=0)
    np.testing.assert_allclose(task.scores(task.ensemble_outputs(outs)), expected, atol=1e-5)
    if loss == "corn":
        np.testing.assert_allclose(corn_probabilities(task.ensemble_outputs(outs)).sum(1).numpy(), 1.0, atol=1e-5)


def test_regress_reads_each_member_in_its_own_units() -> None:
    members = [
        TaskState("regress", "target", [], None, False, "l1", {"mean": m, "std": s}) for m, s in ((10, 2), (12, 4))
    ]
    task = build_task(members[0])
    outs = [torch.tensor([[1.0], [0.0]]), torch.tensor([[0.5], [-1.0]])]
    values = [build_task(m).scores(o) for m, o in zip(members, outs, strict=True)]  # [12, 10], [14, 8]
    np.testing.assert_allclose(task.scores(task.ensemble_outputs(outs, members)), np.mean(values, axis=0), atol=1e-5)


def test_detect_cannot_be_ensembled() -> None:
    task = build_task(TaskState("detect", "boxes", ["fracture"], None, False, "default"))
    with pytest.raises(ConfigError, match="cannot be ensembled"):
        task.ensemble_outputs([[], []])
