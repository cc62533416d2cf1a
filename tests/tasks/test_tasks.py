from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
import torch

from osteon.data.manifest import Manifest
from osteon.errors import ConfigError, ManifestError
from osteon.tasks import build_task
from osteon.tasks.classify import ClassificationTask
from osteon.tasks.grade import GradingTask
from osteon.tasks.regress import RegressionTask


def manifest(**columns: list) -> Manifest:
    n = len(next(iter(columns.values())))
    frame = pd.DataFrame(
        {"image": [f"img{i}.png" for i in range(n)], "patient_id": [f"p{i}" for i in range(n)], **columns}
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return Manifest(frame, root="/data", name="toy")


def test_binary_positive_class_defaults() -> None:
    state = ClassificationTask.setup(
        manifest(label=["normal", "fractured", "normal"]), target=None, positive_class=None, loss=None
    )
    assert state.positive_class == "fractured"  # the class that is not a usual negative name
    state = ClassificationTask.setup(manifest(fractured=[0, 1, 1]), target="fractured", positive_class=None, loss=None)
    assert state.class_names == ["0", "1"] and state.positive_class == "1"


def test_classify_targets_and_unknown_class_error() -> None:
    m = manifest(label=["b", "a", "c", None])
    task = build_task(ClassificationTask.setup(m, target=None, positive_class=None, loss=None))
    assert task.targets(m).tolist() == [1, 0, 2, -1]
    other = manifest(label=["a", "z"])
    with pytest.raises(ConfigError, match="'z'"):
        task.targets(other)


def test_multilabel_targets_and_scores() -> None:
    m = manifest(label=["fracture|implant", "implant", ""])
    state = ClassificationTask.setup(m, target=None, positive_class=None, loss=None)
    assert state.multilabel and state.loss == "bce" and state.class_names == ["fracture", "implant"]
    task = build_task(state)
    assert task.targets(m)[:2].tolist() == [[1, 1], [0, 1]]
    preds = task.predict(torch.tensor([[5.0, -5.0]]))
    assert preds[0].label == "fracture"


@pytest.mark.parametrize(
    ("columns", "target", "message"),
    [
        ({"label": ["a", "a"]}, None, "needs ≥ 2"),
        ({"label": ["a", "b"]}, "grade", "no values in column 'grade'"),
    ],
)
def test_bad_classify_configs(columns: dict, target: str | None, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        ClassificationTask.setup(manifest(**columns), target=target, positive_class=None, loss=None)


def test_grade_needs_integer_ordered_grades() -> None:
    with pytest.raises(ConfigError, match="must be integers"):
        GradingTask.setup(manifest(label=["mild", "moderate", "severe"]), target=None, positive_class=None, loss=None)
    with pytest.raises(ConfigError, match="needs ≥ 3"):
        GradingTask.setup(manifest(label=["0", "1"]), target=None, positive_class=None, loss=None)


@pytest.mark.parametrize("loss", ["corn", "ce"])
def test_grade_predictions_have_grade_probabilities_and_expected_grade(loss: str) -> None:
    m = manifest(label=["0", "1", "2", "3", "4", "10"])
    task = build_task(GradingTask.setup(m, target=None, positive_class=None, loss=loss))
    assert task.state.class_names == ["0", "1", "2", "3", "4", "10"]  # numeric order, not string order
    outputs = torch.randn(3, task.num_outputs)
    preds = task.predict(outputs)
    for p in preds:
        assert p.probabilities.sum() == pytest.approx(1.0, abs=1e-5)
        assert p.grade == p.class_names[int(np.argmax(p.probabilities))]
        assert p.expected_grade == pytest.approx(float(p.probabilities @ np.arange(6)), abs=1e-5)
    loss_value = task.loss(outputs, torch.tensor([0, 2, 5]))
    assert torch.isfinite(loss_value)


def test_regression_standardises_and_restores_units() -> None:
    m = manifest(target=[10.0, 20.0, 30.0])
    task = build_task(RegressionTask.setup(m, target=None, positive_class=None, loss="huber"))
    z = task.targets(m)
    assert z.mean() == pytest.approx(0.0, abs=1e-6)
    values = task.scores(torch.tensor(z)[:, None])
    assert values.tolist() == pytest.approx([10.0, 20.0, 30.0])


def test_regression_rejects_text_targets() -> None:
    with pytest.raises(ConfigError, match="must be numeric"):
        RegressionTask.setup(manifest(bone_age=["1.5", "tall"]), target="bone_age", positive_class=None, loss=None)
    with pytest.raises(ManifestError, match="'target' must be numeric"):
        manifest(target=["1.5", "tall"])


def test_every_task_implements_the_whole_protocol() -> None:
    """Every hook and capability of the Task protocol exists on every registered task (no getattr probing)."""
    import typing

    from osteon.tasks import TASKS
    from osteon.tasks.base import Monitor, Task

    hooks = [name for name in dir(Task) if not name.startswith("_")]
    declared = set(typing.get_type_hints(Task, include_extras=False)) | set(hooks)
    assert {"setup", "configure", "plan", "predict", "predict_image", "trainer_backend", "monitor"} <= declared
    for name in TASKS.names():
        cls = TASKS.get(name)
        missing = [hook for hook in sorted(declared - {"state"}) if not hasattr(cls, hook)]
        assert not missing, f"{name} lacks {missing}"
        assert isinstance(cls.monitor, Monitor) and cls.monitor.name != "score", name
        assert cls.monitor.direction in ("max", "min")
        assert all(isinstance(getattr(cls, c), bool) for c in ("stratify_by_target", "numeric_truth", "setup_on_train"))


def test_predictions_live_in_one_module_and_summarise_themselves() -> None:
    import typing

    import numpy as np

    from osteon.tasks import predictions

    kinds = typing.get_args(predictions.Prediction)
    assert {k.__name__ for k in kinds} == {
        "ClassPrediction",
        "GradePrediction",
        "ValuePrediction",
        "BoxPrediction",
        "MaskPrediction",
        "PointPrediction",
    }
    mask = np.zeros((4, 4), dtype=np.uint8)
    mask[1, 1] = 2
    assert predictions.MaskPrediction(mask, np.zeros((3, 4, 4)), ("background", "a", "b")).summary() == "b"
    boxes = predictions.BoxPrediction(np.zeros((1, 4)), np.array([0.75]), ("fx",), ("fx",))
    assert boxes.summary() == "1 box(es), top score 0.75"
    points = predictions.PointPrediction(np.zeros((2, 2)), np.ones(2), ("a", "b"), measurements={"cobb_angle": 12.0})
    assert points.summary() == "2 landmark(s); cobb_angle 12.0°"
