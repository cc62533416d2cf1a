"""Paired comparison of runs on the same cases."""

from __future__ import annotations

import pytest

from osteon.errors import ConfigError
from osteon.report import RunData, compare_runs, write_report

from .conftest import make_dataset, make_run


def test_a_run_against_itself_shows_no_difference(classify_run):
    data = RunData.load(classify_run)
    table = compare_runs(data, data, key="test", n_resamples=200)
    rows = {r[0]: r for r in table.rows}
    assert rows["AUC"][3] == "0.000" and rows["AUC"][-1] == "1.000"
    assert rows["sensitivity"][-1] == "1.000"
    assert "DeLong" in rows["AUC"][4] and rows["specificity"][4] == "paired bootstrap"


def test_a_much_better_run_is_significantly_better(tmp_path):
    data = make_dataset(tmp_path / "data")
    good = RunData.load(make_run(data, tmp_path / "good", quality=4.0, seed=1))
    bad = RunData.load(make_run(data, tmp_path / "bad", quality=0.0, seed=2))
    rows = {r[0]: r for r in compare_runs(good, bad, key="test", n_resamples=300).rows}
    assert float(rows["AUC"][1]) > float(rows["AUC"][2])
    assert rows["AUC"][-1] in ("<0.001",) or float(rows["AUC"][-1]) < 0.01


@pytest.mark.parametrize("task", ["grade", "regress"])
def test_other_tasks_have_paired_tests(tmp_path, task):
    data = make_dataset(tmp_path / "data", task=task)
    a = RunData.load(make_run(data, tmp_path / "a", task=task, quality=3.0, seed=1))
    b = RunData.load(make_run(data, tmp_path / "b", task=task, quality=1.0, seed=2))
    names = [r[0] for r in compare_runs(a, b, key="test", n_resamples=100).rows]
    expected = (
        ["accuracy", "macro AUC", "quadratic weighted kappa", "mean absolute grade error"]
        if task == "grade"
        else ["MAE", "RMSE"]
    )
    assert names == expected


def test_different_cases_are_refused(tmp_path):
    a = make_run(make_dataset(tmp_path / "data_a", seed=0), tmp_path / "a")
    b = make_run(make_dataset(tmp_path / "data_b", seed=0), tmp_path / "b")  # same names, other folder
    with pytest.raises(ConfigError, match=r"not evaluated on the same cases.*80 only in a.*80 only in b"):
        compare_runs(RunData.load(a), RunData.load(b), key="test")


def test_different_tasks_are_refused(tmp_path):
    a = make_run(make_dataset(tmp_path / "data"), tmp_path / "a")
    b = make_run(make_dataset(tmp_path / "data2", task="grade"), tmp_path / "b", task="grade")
    with pytest.raises(ConfigError, match="runs must share task and classes"):
        compare_runs(RunData.load(a), RunData.load(b), key="test")


def test_comparison_section_in_the_report(tmp_path):
    data = make_dataset(tmp_path / "data")
    a = make_run(data, tmp_path / "a", quality=3.0, seed=1)
    b = make_run(data, tmp_path / "b", quality=1.0, seed=2)
    html = write_report(a, compare=[b], gallery_size=0, n_resamples=100).read_text()
    assert 'id="comparison"' in html and "a vs b on the test cases" in html and "DeLong" in html


def good_and_bad_runs(tmp_path, task):
    """Two evaluated runs of ``task`` on one dataset: predictions that follow the truth, and chance."""
    data = make_dataset(tmp_path / "data", task=task)
    good = RunData.load(make_run(data, tmp_path / "good", task=task, quality=4.0, seed=1))
    return good, RunData.load(make_run(data, tmp_path / "bad", task=task, quality=0.0, seed=2))


def test_detection_runs_compare_map_and_froc_with_ratios(tmp_path):
    good, bad = good_and_bad_runs(tmp_path, "detect")
    rows = {r[0]: r for r in compare_runs(good, bad, key="test", n_resamples=200).rows}
    assert list(rows) == ["mAP@0.5", "mAP@0.5:0.95", "FROC mean sensitivity"]
    assert float(rows["mAP@0.5"][1]) > float(rows["mAP@0.5"][2])  # scores follow the truth in `good` only
    assert rows["mAP@0.5"][4].startswith("paired bootstrap; ratio ") and "×" in rows["mAP@0.5"][4]
    same = {r[0]: r for r in compare_runs(good, good, key="test", n_resamples=100).rows}
    assert same["mAP@0.5"][3] == "0.000 (0.000–0.000)" and same["mAP@0.5"][-1] == "1.000"
    assert same["mAP@0.5"][4] == "paired bootstrap; ratio 1.00× (1.00–1.00×)"


def test_segmentation_runs_compare_dice_and_iou(tmp_path):
    good, bad = good_and_bad_runs(tmp_path, "segment")
    rows = {r[0]: r for r in compare_runs(good, bad, key="test", n_resamples=200).rows}
    assert list(rows) == ["Dice", "Dice, images with foreground", "IoU"]
    # the synthetic Dice is 0.4 + 0.1 * quality on images with foreground, 1 (both masks empty) on the others
    assert float(rows["Dice, images with foreground"][1]) == pytest.approx(0.8, abs=0.06)
    assert float(rows["Dice, images with foreground"][2]) == pytest.approx(0.4, abs=0.06)
    assert float(rows["Dice"][1]) > float(rows["Dice, images with foreground"][1])  # empty images count as 1
    assert float(rows["Dice"][-1]) < 0.05 and rows["IoU"][4] == "paired bootstrap"  # 1/201: the smallest p here
    same = {r[0]: r for r in compare_runs(good, good, key="test", n_resamples=100).rows}
    assert same["Dice"][3] == "0.000 (0.000–0.000)" and same["Dice"][-1] == "1.000"


def test_the_mean_dice_leaves_the_resized_grid_columns_out():
    import pandas as pd

    from osteon.report.kinds.segment import mean_dice

    frame = pd.DataFrame({"dice_bone": [0.8, 0.6], "dice_grid_bone": [0.0, 0.0], "iou_bone": [0.1, 0.1]})
    assert mean_dice(frame).tolist() == [0.8, 0.6]
