"""Multi-task heads: several targets from one backbone, weighted per-target losses, per-target metrics with CIs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from osteon.data.manifest import Manifest
from osteon.data.phantom import make_phantom_dataset
from osteon.errors import ConfigError
from osteon.tasks import TASKS
from osteon.tasks.multitask import head_kind, parse_targets

pytestmark = pytest.mark.filterwarnings("ignore")


@pytest.fixture(scope="module")
def phantoms(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("mt")
    manifest = make_phantom_dataset(out, images=40, size=64, seed=4)
    frame = manifest.frame.copy()
    frame.loc[frame.index % 5 == 0, "kl_grade"] = pd.NA  # partial labels: a fifth of the grades unknown
    Manifest(frame, out, name="mt").save(out / "partial.csv", overwrite=True)
    return out / "partial.csv"


def test_target_list_and_head_kinds() -> None:
    assert parse_targets("a, b:0.5") == [("a", 1.0), ("b", 0.5)]
    with pytest.raises(ConfigError, match="at least two"):
        parse_targets("a")
    with pytest.raises(ConfigError, match="not a number"):
        parse_targets("a,b:x")
    assert head_kind(pd.Series([1.5, 2.25, None])) == "regress"
    assert head_kind(pd.Series(["0", "1", "2", "4"])) == "grade"
    assert head_kind(pd.Series(["hand", "leg"])) == "classify" and head_kind(pd.Series([0, 1, 1])) == "classify"


def task_for(path: Path, target: str):  # type: ignore[no-untyped-def]
    manifest = Manifest.load(path)
    state = TASKS.get("multitask").setup(manifest, target=target, positive_class=None, loss=None)
    return TASKS.get("multitask")(state), manifest


def test_heads_slice_one_output_and_missing_targets_are_masked(phantoms: Path) -> None:
    task, manifest = task_for(phantoms, "fractured,kl_grade:0.5,target")
    assert [(n, t.name) for n, _, t in task.heads] == [
        ("fractured", "classify"),
        ("kl_grade", "grade"),
        ("target", "regress"),
    ]
    assert task.num_outputs == 2 + 4 + 1  # CORN: K-1 logits for 5 grades
    targets = task.targets(manifest)
    assert targets.shape == (40, 3) and np.isnan(targets[::5, 1]).all() and not np.isnan(targets[:, 0]).any()
    assert not task.missing_targets(manifest).any()  # a row needs one known target only


def test_loss_is_the_weighted_sum_of_the_heads(phantoms: Path) -> None:
    torch.manual_seed(0)
    weighted, _ = task_for(phantoms, "fractured:2,kl_grade:0.5")
    model = weighted.build_model(model="tiny_cnn", pretrained=None, covariate_dim=0, dropout=0.0).eval()
    batch = {
        "image": torch.rand(6, 1, 32, 32),
        "target": torch.tensor([[0, 1], [1, np.nan], [0, 3], [1, 4], [0, 0], [1, 2]]),
    }
    total = weighted.training_loss(model, batch, None)
    out = model(batch["image"])
    (_, _, cls), (_, _, grade) = weighted.heads
    known = torch.isfinite(batch["target"][:, 1])
    expected = 2 * cls.loss(out[:, :2], batch["target"][:, 0].long())
    expected = expected + 0.5 * grade.loss(out[known][:, 2:], batch["target"][known, 1].long())
    torch.testing.assert_close(total, expected)


def test_trains_and_reports_every_target_with_cis(phantoms: Path, tmp_path: Path) -> None:
    from osteon.engine import Predictor, evaluate, train

    run = train(
        task="multitask", data=str(phantoms), target="fractured,kl_grade:0.5,target", model="tiny_cnn", epochs=1,
        image_size=32, batch_size=8, out=str(tmp_path / "run"), progress=False,
    )  # fmt: skip
    val = pd.read_csv(run.path / "predictions_val.csv")
    assert {"fractured.prob_1", "kl_grade.expected_grade", "target.prediction", "kl_grade.truth"} <= set(val.columns)
    result = evaluate(run.path, split="test", n_resamples=20, progress=False)
    per = result["per_target"]
    assert (per["fractured"]["kind"], per["kl_grade"]["kind"], per["target"]["kind"]) == (
        "classify",
        "grade",
        "regress",
    )
    for name, metric in (("fractured", "auc"), ("kl_grade", "qwk"), ("target", "mae")):
        ci = per[name][metric]
        assert ci["low"] <= ci["estimate"] <= ci["high"], (name, ci)
    test = Manifest.load(phantoms).frame.query("split == 'test'")
    assert per["kl_grade"]["n"] == int(test["kl_grade"].notna().sum()) < per["fractured"]["n"] == len(test)
    assert result["weights"] == {"fractured": 1.0, "kl_grade": 0.5, "target": 1.0}
    prediction = Predictor.from_run(run.path).predict_image(Manifest.load(phantoms).paths()[0])
    assert prediction.class_names == ("0", "1")  # a single file: the first target's prediction


def test_every_target_gets_its_own_cam(phantoms: Path, tmp_path: Path) -> None:
    from osteon.engine import Predictor, train
    from osteon.explain import explain_targets

    run = train(
        task="multitask", data=str(phantoms), target="fractured,kl_grade:0.5,target", model="tiny_cnn", epochs=1,
        image_size=32, batch_size=8, out=str(tmp_path / "run"), progress=False,
    )  # fmt: skip
    predictor = Predictor.from_run(run.path)
    image = Manifest.load(phantoms).paths()[0]
    maps = explain_targets(predictor, image, out_dir=tmp_path / "cams")
    assert [m.target.split(": ")[0] for m in maps] == ["fractured", "kl_grade", "target"]
    assert maps[2].target == "target: value" and all(m.map.shape == maps[0].map.shape for m in maps)
    assert len(list((tmp_path / "cams").glob("*_fractured_*.png"))) == 1
    (grade,) = explain_targets(predictor, image, targets=["kl_grade:2"])
    assert grade.target == "kl_grade: 2"
    assert len(explain_targets(predictor, image, targets=["all"])) == 2 + 5 + 1
    with pytest.raises(ConfigError, match="'age' is not a target of this multi-task model"):
        explain_targets(predictor, image, targets=["age"])


def test_a_head_target_reads_its_own_slice_of_the_output() -> None:
    from osteon.explain.multitask_targets import _HeadTarget

    output = torch.arange(7.0)
    assert _HeadTarget(lambda out: out[..., 1], slice(2, 6))(output).item() == 3.0
