"""CAM adapters: what each task's maps explain."""

from __future__ import annotations

import pytest
import torch

from osteon.errors import ConfigError
from osteon.explain.targets import CAM_ADAPTERS, cam_adapter_for
from osteon.models.heads import corn_probabilities
from osteon.tasks import TaskState, build_task


def task(name: str, names: list[str], loss: str):
    extra = {"mean": 10.0, "std": 2.0} if name == "regress" else {}
    positive = "1" if name == "classify" and len(names) == 2 else None
    return build_task(TaskState(name, "label", names, positive, False, loss, extra))


def test_every_image_level_task_has_an_adapter():
    assert {"classify", "grade", "regress"} <= set(CAM_ADAPTERS.names())


def test_unknown_task_says_what_is_available():
    with pytest.raises(
        ConfigError,
        match=r"not available for task 'volumetric'.*classify, detect, grade, keypoints, multitask, regress, segment",
    ):
        cam_adapter_for("volumetric")


def test_classify_targets_are_logits_of_the_requested_classes():
    output = torch.tensor([[0.2, 1.5, -0.3]])
    targets = cam_adapter_for("classify").targets(task("classify", ["a", "b", "c"], "ce"), output, None)
    assert [t.name for t in targets] == ["b"]  # the prediction by default
    assert float(targets[0].fn(output[0])) == pytest.approx(1.5)
    every = cam_adapter_for("classify").targets(task("classify", ["a", "b", "c"], "ce"), output, ["ALL"])
    assert [t.name for t in every] == ["a", "b", "c"]
    assert sum(t.score for t in every) == pytest.approx(1.0, abs=1e-6)


def test_corn_grade_target_is_the_log_probability_of_the_grade():
    logits = torch.tensor([[2.0, 0.5, -1.0, -2.0]], requires_grad=True)
    grade = task("grade", ["0", "1", "2", "3", "4"], "corn")
    targets = cam_adapter_for("grade").targets(grade, logits.detach(), ["2"])
    expected = torch.log(corn_probabilities(logits)[0, 2])
    value = targets[0].fn(logits[0])
    assert float(value) == pytest.approx(float(expected), rel=1e-5)
    value.backward()
    assert logits.grad is not None and logits.grad.abs().sum() > 0  # differentiable, as Grad-CAM needs


def test_ce_grade_target_is_the_logit():
    output = torch.tensor([[0.1, 0.9, 0.3]])
    targets = cam_adapter_for("grade").targets(task("grade", ["0", "1", "2"], "ce"), output, ["0"])
    assert float(targets[0].fn(output[0])) == pytest.approx(0.1)


def test_regress_target_is_the_value_in_its_units():
    output = torch.tensor([[1.5]])
    targets = cam_adapter_for("regress").targets(task("regress", [], "l1"), output, None)
    assert targets[0].name == "value" and targets[0].score == pytest.approx(13.0)  # 1.5 * std 2 + mean 10
    with pytest.raises(ConfigError, match="one output"):
        cam_adapter_for("regress").targets(task("regress", [], "l1"), output, ["old"])
