"""Fusion math, study-level findings, the JSON schema and error attribution, on hand-made stage outputs."""

from __future__ import annotations

import json
import math
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from osteon.data.manifest import Manifest
from osteon.pipelines.evaluate import attribute, evaluate_result, localiser_recall, truth_of
from osteon.pipelines.results import SCHEMA, PipelineResult, combine
from osteon.pipelines.runner import LoadedRun, Pipeline, StageOutput
from osteon.pipelines.schema import parse_pipeline

pytestmark = pytest.mark.filterwarnings("ignore")


def test_combine_max_mean_any() -> None:
    values = np.array([0.2, 0.9, np.nan, 0.4])
    assert combine(values, "max", threshold=0.5) == pytest.approx(0.9)
    assert combine(values, "mean", threshold=0.5) == pytest.approx(0.5)
    assert combine(values, "any", threshold=0.5) == 1.0
    assert combine(values, "any", threshold=0.95) == 0.0
    assert math.isnan(combine(np.array([np.nan]), "max", threshold=0.5))


def fake_run(key: str, kind: str, classes: list[str], positive: str | None = None, threshold: float = 0.5) -> LoadedRun:
    predictor = SimpleNamespace(
        task=SimpleNamespace(state=SimpleNamespace(positive_class=positive)),
        operating_point={"threshold": threshold},
    )
    return LoadedRun(key, Path(f"/runs/{key}"), predictor, kind, classes, f"v-{key}")  # type: ignore[arg-type]


def box_json(*boxes: tuple[list[float], float]) -> str:
    return json.dumps([{"xyxy": b, "label": "fracture", "score": s} for b, s in boxes])


#: image: truth, truth box, gate probability, detector boxes, crop probabilities (per box)
CASES = [
    ("missed.png", "fractured", [10, 10, 20, 20], 0.9, [], []),  # FN: no region
    ("elsewhere.png", "fractured", [10, 10, 20, 20], 0.9, [([60, 60, 70, 70], 0.8)], [0.1]),  # FN: wrong place
    ("misread.png", "fractured", [10, 10, 20, 20], 0.9, [([8, 8, 22, 22], 0.8)], [0.2]),  # FN: classifier
    ("found.png", "fractured", [10, 10, 20, 20], 0.9, [([8, 8, 22, 22], 0.8), ([50, 50, 60, 60], 0.3)], [0.9, 0.1]),
    ("false.png", "normal", None, 0.9, [([30, 30, 40, 40], 0.5)], [0.7]),  # FP: classifier on a false region
    ("clear.png", "normal", None, 0.9, [], []),  # TN
    ("rejected.png", "fractured", [10, 10, 20, 20], 0.1, [], []),  # FN: the gate
    ("broken.png", "fractured", [10, 10, 20, 20], None, [], []),  # unreadable: not scored
]


@pytest.fixture()
def result(tmp_path: Path) -> PipelineResult:
    spec = parse_pipeline(
        {
            "name": "cascade",
            "runs": {"q": "q", "det": "det", "cls": "cls"},
            "stages": [
                {"name": "quality", "run": "q", "gate": {"class": "good"}},
                {"name": "detect", "run": "det"},
                {"name": "classify", "run": "cls", "input": {"from": "detect", "crop": {"margin": 0.0}}},
            ],
            "findings": [
                {"name": "fracture", "stage": "classify", "truth": "label", "positive": "fractured"},
                {"name": "usable", "stage": "quality", "class": "good"},  # the gate's own finding (no truth)
            ],
        }
    )
    runs = {
        "q": fake_run("q", "class", ["good", "poor"]),
        "det": fake_run("det", "boxes", ["fracture"]),
        "cls": fake_run("cls", "class", ["fractured", "normal"], positive="fractured", threshold=0.5),
    }
    pipeline = Pipeline(spec, runs)
    frame = pd.DataFrame(
        {
            "image": [c[0] for c in CASES],
            "patient_id": ["P1", "P1", "P2", "P2", "P3", "P3", "P4", "P4"],
            "label": [c[1] for c in CASES],
            "boxes": [box_json((c[2], 1.0)) if c[2] else "[]" for c in CASES],
        }
    )
    manifest = Manifest(frame, root=tmp_path, name="cases")
    readable = [i for i, c in enumerate(CASES) if c[3] is not None]
    gate_table = pd.DataFrame(
        {
            "row": range(len(CASES)),
            "prob_good": [c[3] if c[3] is not None else np.nan for c in CASES],
            "error": ["" if c[3] is not None else "unreadable" for c in CASES],
        }
    )
    gate = pd.DataFrame({"row": gate_table["row"], "probability": gate_table["prob_good"]})
    gate["passed"] = gate["probability"].fillna(-1) >= 0.5
    passed = [i for i in readable if CASES[i][3] >= 0.5]
    detect_table = pd.DataFrame(
        {
            "row": passed,
            "pred_boxes": [box_json(*CASES[i][4]) for i in passed],
            "width": 100,
            "height": 100,
            "error": "",
        }
    )
    crops = [
        {"row": i, "region": k, "x1": b[0], "y1": b[1], "x2": b[2], "y2": b[3], "region_score": s}
        | {"region_label": "fracture", "prob_fractured": CASES[i][5][k], "prob_normal": 1 - CASES[i][5][k], "error": ""}
        for i in passed
        for k, (b, s) in enumerate(CASES[i][4])
    ]
    outputs = {
        "quality": StageOutput(gate_table, ran_on=np.array(readable)),
        "detect": StageOutput(detect_table, ran_on=np.array(passed)),
        "classify": StageOutput(pd.DataFrame(crops), ran_on=np.array(passed)),
    }
    return PipelineResult.build(pipeline, manifest, outputs, {"quality": gate})


def test_findings_per_image(result: PipelineResult) -> None:
    f = result.findings.query("finding == 'fracture'").set_index("image")
    assert list(f["status"]) == ["no_region", "ok", "ok", "ok", "ok", "no_region", "rejected:quality", "error"]
    assert f.loc["found.png", "probability"] == pytest.approx(0.9)  # max over its two crops
    assert f.loc["found.png", "n_regions"] == 2 and f.loc["missed.png", "probability"] == 0.0  # empty_score
    assert f.loc["false.png", "positive"] and not f.loc["misread.png", "positive"]
    assert f["run_version"].eq("v-cls").all() and f["threshold"].eq(0.5).all()
    gate = result.findings.query("finding == 'usable'").set_index("image")
    assert gate.loc["rejected.png", "status"] == "ok" and gate.loc["rejected.png", "probability"] == 0.1


def test_attribution_blames_the_right_stage(result: PipelineResult) -> None:
    finding = result.pipeline.spec.findings[0]
    truth = truth_of(result.manifest.frame, finding, "fractured")
    table = attribute(result, finding, truth).set_index("image")
    assert "broken.png" not in table.index  # unreadable images are counted apart, not blamed
    blame = {i: (r["error"], r["stage"], r["reason"]) for i, r in table.iterrows() if r["error"]}
    assert blame == {
        "missed.png": ("FN", "detect", "missed by localiser"),
        "elsewhere.png": ("FN", "detect", "localised elsewhere"),
        "misread.png": ("FN", "classify", "misclassified"),
        "false.png": ("FP", "classify", "misclassified"),
        "rejected.png": ("FN", "quality", "rejected by gate"),
    }
    recall = localiser_recall(result, finding, truth)
    assert recall is not None
    assert (recall["positive_images"], recall["with_region"], recall["with_region_on_lesion"]) == (4, 3, 2)


def test_evaluation_counts_every_error_once(result: PipelineResult) -> None:
    scores = evaluate_result(result, n_resamples=50)["fracture"]
    (tn, fp), (fn, tp) = scores["image"]["confusion_matrix"]
    assert (tn, fp, fn, tp) == (1, 1, 4, 1)
    assert sum(n for reasons in scores["attribution"].values() for n in reasons.values()) == fp + fn
    assert scores["attribution"]["detect"] == {"localised elsewhere": 1, "missed by localiser": 1}
    assert scores["n_unreadable"] == 1
    assert scores["study"] is not None and scores["study"]["n"] == 4  # patients: any image positive


def test_study_level_findings_and_json_schema(result: PipelineResult, tmp_path: Path) -> None:
    studies = result.studies().query("finding == 'fracture'").set_index("study")
    assert studies.loc["P2", "probability"] == pytest.approx(0.9)  # max of misread (0.2) and found (0.9)
    assert studies.loc["P4", "status"] == "rejected:quality" and studies.loc["P4", "n_images"] == 0
    document = result.to_json()
    text = json.dumps(document, allow_nan=False)  # strict JSON: no NaN
    assert document["schema"] == SCHEMA and json.loads(text)["pipeline"]["name"] == "cascade"
    image = document["images"][3]
    entry = image["findings"][0]
    assert set(entry) >= {"name", "stage", "run", "run_version", "probability", "threshold", "positive", "grade"}
    assert [r["xyxy"] for r in entry["regions"]] == [[8, 8, 22, 22], [50, 50, 60, 60]]
    assert (
        document["images"][6]["status"] == "rejected" and document["images"][6]["gates"]["quality"]["passed"] is False
    )
    assert document["images"][7]["status"] == "error" and document["images"][7]["error"] == "unreadable"
    assert {s["study_id"] for s in document["studies"]} == {"P1", "P2", "P3", "P4"}
    assert [f["name"] for f in document["studies"][0]["findings"]] == ["fracture", "usable"]
    paths = result.save(tmp_path / "out")
    assert json.loads(paths["result"].read_text()) == json.loads(text)
    assert len(pd.read_csv(paths["findings"])) == 2 * len(CASES)


def test_a_learned_rule_combines_the_regions_of_its_stage(result: PipelineResult) -> None:
    from osteon.pipelines.learned_combine import LearnedCombine

    spec, runs = result.pipeline.spec, result.pipeline.runs
    spec.stage("classify").combine = "learned"
    rule = LearnedCombine(coef=(0.0, 1.0, 0.0, 3.0, 1.0), intercept=-2.0, n_images=10, n_positive=5)
    pipeline = Pipeline(spec, runs, learned={"classify": rule})
    outputs = {
        name: StageOutput(table, ran_on=np.unique(table["row"]) if len(table) else np.zeros(0, int))
        for name, table in result.stages.items()
    }
    again = PipelineResult.build(pipeline, result.manifest, outputs, result.gates)
    found = again.findings.query("finding == 'fracture' and image == 'found.png'").iloc[0]
    assert found["probability"] == pytest.approx(rule(np.array([0.9, 0.1]), np.array([0.8, 0.3])))
    missed = again.findings.query("finding == 'fracture' and image == 'missed.png'").iloc[0]
    assert missed["status"] == "no_region" and missed["probability"] == 0.0  # no regions: the empty score


def test_images_without_patient_ids_are_their_own_bootstrap_units(result: PipelineResult) -> None:
    result.manifest.frame["patient_id"] = pd.Series([pd.NA] * len(CASES), dtype="string")
    scores = evaluate_result(result, n_resamples=50)["fracture"]
    assert scores["image"]["n"] == 7 and scores["image"]["bootstrap"]["n_units"] == 7
    result.manifest.frame.loc[0, "patient_id"] = "P1"  # some ids: the others are units of their own
    assert evaluate_result(result, n_resamples=50)["fracture"]["image"]["n"] == 7
