"""Per-task report adapters: monitored metric names, dataset-card summaries of boxes and masks, box overlays."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from osteon.engine.rundir import RunDir
from osteon.report import RunData, write_report
from osteon.report.box_overlays import PRED_COLOUR, TRUE_COLOUR
from osteon.report.dataset_card import split_label_table
from osteon.report.figures import write_figures
from osteon.report.kinds import REPORT_KINDS, ReportKind, adapter_for

from .conftest import make_dataset, make_run

SRC = Path(__file__).resolve().parents[2] / "src" / "osteon" / "report"


def test_every_task_has_an_adapter_naming_its_monitored_metric():
    tasks = ("classify", "grade", "regress", "detect", "segment", "keypoints")
    names = {name: adapter_for(name).monitor_name for name in tasks}
    assert names == {
        "classify": "AUC",
        "grade": "quadratic weighted kappa",
        "regress": "MAE",
        "detect": "mAP@0.5",
        "segment": "mean Dice",
        "keypoints": "MRE px",
    }
    assert adapter_for("regress").monitor_direction == "min" and adapter_for("regress").numeric_truth
    assert adapter_for("keypoints").monitor_direction == "min"
    assert set(names) <= set(REPORT_KINDS.names())
    generic = adapter_for("no_such_task")  # a task without an adapter still gets a report
    assert type(generic) is ReportKind and generic.subgroup_header(None) == ["n"]  # type: ignore[arg-type]


def test_the_report_compares_no_task_name():
    """Everything that differs per task goes through report/kinds (DESIGN §4; check_layers.py's rule)."""
    branch = re.compile(r"""(==|!=|\bin\s*[\(\[\{])\s*["'](classify|grade|regress|detect|segment|keypoints)["']""")
    found = [
        f"{path.name}:{i}"
        for path in SRC.rglob("*.py")
        for i, line in enumerate(path.read_text().splitlines(), 1)
        if branch.search(line)
    ]
    assert not found


def _model_selection(html: str) -> str:
    match = re.search(r"model selection</t[hd]>\s*<td>([^<]*)</td>", html)
    assert match, "no model selection row"
    return match.group(1)


def test_a_detection_report_names_map_as_its_monitor(tmp_path):
    run = make_run(make_dataset(tmp_path / "data", task="detect"), tmp_path / "run", task="detect")
    html = write_report(run, gallery_size=0, n_resamples=100, progress=False).read_text()
    assert _model_selection(html) == "epoch with the best validation mAP@0.5 (checkpoint best.ckpt)"


def test_the_monitor_recorded_in_training_json_wins(tmp_path):
    run = make_run(make_dataset(tmp_path / "data", task="regress"), tmp_path / "run", task="regress")
    rundir = RunDir(run)
    assert "lower is better" in RunData.load(run).monitor_text()  # the adapter: MAE, lower is better
    record = rundir.read_json(rundir.training)
    rundir.write_json(rundir.training, {**record, "monitor": {"name": "RMSE", "direction": "min"}})
    html = write_report(run, gallery_size=0, n_resamples=100, progress=False).read_text()
    assert _model_selection(html) == "epoch with the best validation RMSE (lower is better) (checkpoint best.ckpt)"


def _card_rows(run: Path) -> dict[str, list[str]]:
    table = split_label_table(RunData.load(run))
    return {row[0]: row[1:] for row in table.rows}


def test_detection_dataset_card_summarises_boxes_instead_of_listing_them(tmp_path):
    data = make_dataset(tmp_path / "data", task="detect")
    frame = pd.read_csv(data, dtype=str)
    # every positive image has its own boxes (as in real data): distinct JSON per image
    rng = np.random.default_rng(0)
    boxes = []
    for label in frame["label"]:
        n = int(rng.integers(1, 3)) if label == "1" else 0
        boxes.append(
            json.dumps([{"xyxy": [1 + k, 2 + k, 9 + k + rng.random(), 12 + k], "label": "fracture"} for k in range(n)])
        )
    frame["boxes"] = boxes
    frame.loc[0, "boxes"] = '[{"xyxy": [1, 2], "label": "fracture"}]'  # two numbers: malformed
    frame.to_csv(data, index=False)
    run = make_run(data, tmp_path / "run", task="detect")
    rows = _card_rows(run)
    assert len(rows) <= 8, list(rows)  # images, patients, with/without boxes, malformed, boxes per class
    assert not any("xyxy" in name for name in rows)
    n_boxes = [len(json.loads(b)) for b in boxes[1:]]  # row 0 is malformed
    columns = ["train", "val", "test", "all"]
    assert dict(zip(columns, rows["images with boxes"], strict=True))["all"] == str(sum(n > 0 for n in n_boxes))
    assert rows["images without boxes ([])"][-1] == str(sum(n == 0 for n in n_boxes))
    assert rows["boxes of fracture"][-1] == str(sum(n_boxes))
    assert rows["images with malformed box JSON"][-1] == "1"
    expected_test = sum(n for n, split in zip(n_boxes, frame["split"][1:], strict=True) if split == "test")
    assert dict(zip(columns, rows["boxes of fracture"], strict=True))["test"] == str(expected_test)


def test_segmentation_dataset_card_counts_masks(tmp_path):
    data = make_dataset(tmp_path / "data", task="segment")
    frame = pd.read_csv(data, dtype=str)
    (tmp_path / "data" / "masks").mkdir()
    masks: list[str | None] = []
    for i, label in enumerate(frame["label"]):
        if i % 10 == 0:
            masks.append(None)  # no file: all background
            continue
        mask = np.zeros((16, 20), np.uint8)
        if label == "1":
            mask[3:9, 4:12] = 1
        Image.fromarray(mask).save(tmp_path / "data" / "masks" / f"m{i:04d}.png")
        masks.append(f"masks/m{i:04d}.png")
    frame["mask"] = masks
    frame.to_csv(data, index=False)
    run = make_run(data, tmp_path / "run", task="segment")
    rows = _card_rows(run)
    given = [m is not None for m in masks]
    empty = [m is not None and label != "1" for m, label in zip(masks, frame["label"], strict=True)]
    assert rows["images with a mask file"][-1] == str(sum(given))
    assert rows["images without a mask file (all background)"][-1] == str(len(masks) - sum(given))
    assert rows["mask files that are empty (all background)"][-1] == str(sum(empty))
    assert not any(name.startswith("mask =") for name in rows)


def test_segmentation_dataset_card_counts_polygons(tmp_path):
    data = make_dataset(tmp_path / "data", task="segment")
    frame = pd.read_csv(data, dtype=str)
    square = [[2, 2], [10, 2], [10, 10], [2, 10]]
    polygons: list[str | None] = [
        None if i % 7 == 0 else json.dumps([{"label": "bone", "points": square}] * (label == "1"))
        for i, label in enumerate(frame["label"])
    ]
    frame["polygons"] = polygons
    frame.to_csv(data, index=False)
    run = make_run(data, tmp_path / "run", task="segment")
    rundir = RunDir(run)
    state = rundir.read_json(rundir.state)
    state["task"]["target"], state["task"]["extra"]["source"] = "polygons", "polygons"
    rundir.write_json(rundir.state, state)
    rows = _card_rows(run)
    with_shapes = sum(p is not None and p != "[]" for p in polygons)
    assert rows["images with polygons"][-1] == rows["polygons of bone"][-1] == str(with_shapes)
    assert rows["images annotated empty ([]: all background)"][-1] == str(sum(p == "[]" for p in polygons))
    assert rows["images not annotated"][-1] == str(sum(p is None for p in polygons))


def test_evaluate_figures_draw_box_overlays_for_a_detector(tmp_path):
    run = make_run(make_dataset(tmp_path / "data", task="detect"), tmp_path / "run", task="detect")
    rundir = RunDir(run)
    result = rundir.read_json(rundir.metrics)["test"]
    frame = rundir.read_predictions("test")
    frame["width"], frame["height"] = 20, 16  # the columns DetectionTask.predict_rows writes
    frame["pred_boxes"] = [  # beside the reference box, so that both colours stay visible
        json.dumps([{"xyxy": [6, 1, 18, 9], "label": "fracture", "score": float(s)}]) for s in frame["max_score"]
    ]
    frame.to_csv(rundir.predictions("test"), index=False)
    written = write_figures(run, result)
    overlays = sorted(rundir.figure_dir("overlays_test").glob("*.png"))
    assert overlays and len(overlays) <= 8 and set(overlays) <= set(written)
    with_truth = frame[frame["truth"] != "[]"]["image"].map(lambda p: Path(p).stem + "_boxes.png")
    assert {p.name for p in overlays} <= set(with_truth)  # images with reference boxes come first
    pixels = np.asarray(Image.open(overlays[0]).convert("RGB")).reshape(-1, 3)
    colours = {tuple(p) for p in pixels}
    assert TRUE_COLOUR in colours and PRED_COLOUR in colours
    html = write_report(run, gallery_size=0, n_resamples=100, progress=False).read_text()
    assert "from RUN/figures/overlays_test" in html


def test_evaluate_figures_of_a_regressor_are_drawn_by_its_adapter(tmp_path):
    run = make_run(make_dataset(tmp_path / "data", task="regress"), tmp_path / "run", task="regress")
    rundir = RunDir(run)
    written = write_figures(run, rundir.read_json(rundir.metrics)["test"])
    # the adapter's Bland–Altman, then the learning curves of logs/metrics.csv (report/pubfigs.py), each also vector
    assert [p.name for p in written] == ["test_bland_altman.png", "learning_curves.png"] and written[0].is_file()
    assert written[0].with_suffix(".svg").is_file() and written[0].with_suffix(".pdf").is_file()


@pytest.mark.parametrize("task", ["classify", "grade", "regress", "segment", "detect"])
def test_gallery_and_subgroups_come_from_the_adapter(tmp_path, task):
    from osteon.report.gallery import select_cases
    from osteon.report.subgroups import subgroup_table

    run = make_run(make_dataset(tmp_path / "data", task=task), tmp_path / "run", task=task)
    data = RunData.load(run)
    groups, _ = select_cases(data, "test", per_group=2)
    assert groups and all(len(rows) <= 2 for _, _, rows in groups)
    table = subgroup_table(data, "test", ["sex"], n_resamples=50)
    assert table is not None and table.header == ["covariate", "level", *data.kind.subgroup_header(data)]
    assert all(len(row) == len(table.header) for row in table.rows)


def test_a_detection_report_states_the_box_scale_chosen_on_validation(tmp_path):
    run = make_run(make_dataset(tmp_path / "data", task="detect"), tmp_path / "run", task="detect")
    html = write_report(run, gallery_size=0, n_resamples=100, progress=False).read_text()
    assert "post-processing</t" not in html  # nothing chosen, no row
    state = json.loads((run / "state.json").read_text())
    chosen = {"box_scale": 0.85, "chosen_on": "val", "method": "max validation mAP@0.5"}
    chosen["map50_by_scale"] = {"1.00": 0.1}  # not a scalar: not in the row
    state["task"]["extra"]["calibration"] = chosen
    (run / "state.json").write_text(json.dumps(state))
    html = write_report(run, gallery_size=0, n_resamples=100, progress=False).read_text()
    row = r"post-processing</t[hd]>\s*<td>box_scale 0.85 \(chosen on val: max validation mAP@0.5\)</td>"
    assert re.search(row, html)
