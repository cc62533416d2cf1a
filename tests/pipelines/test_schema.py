"""The pipeline file's validation: names, cycles, shapes, and how stage outputs may be used."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from osteon.pipelines.schema import PipelineError, check_outputs, load_pipeline, parse_pipeline


def cascade(**changes: Any) -> dict[str, Any]:
    values: dict[str, Any] = {
        "name": "fracture",
        "runs": {"detector": "runs/det", "classifier": "runs/cls", "quality": "runs/q"},
        "stages": [
            {"name": "detect", "run": "detector"},
            {"name": "classify", "run": "classifier", "input": {"from": "detect", "crop": {"margin": 0.2}}},
            {"name": "gate", "run": "quality", "gate": {"class": "good", "min_probability": 0.6}},
        ],
        "findings": [{"name": "fracture", "stage": "classify", "class": "fractured"}],
    }
    values.update(changes)
    return values


KINDS = {
    "detector": ("boxes", ["fracture"]),
    "classifier": ("class", ["fractured", "normal"]),
    "quality": ("class", ["good", "poor"]),
}


def test_valid_file_orders_gates_first_and_sources_before_consumers(tmp_path: Path) -> None:
    import yaml

    path = tmp_path / "p.yaml"
    path.write_text(yaml.safe_dump(cascade()))
    spec = load_pipeline(path)
    assert spec.order() == ["gate", "detect", "classify"]
    assert spec.run_path("detector") == tmp_path / "runs/det"  # relative to the file
    assert spec.stage("classify").input.crop.margin == 0.2  # type: ignore[union-attr]
    check_outputs(spec, KINDS)  # no error


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"stages": [{"name": "a", "run": "detectr"}]}, "unknown run 'detectr' (did you mean detector"),
        (
            {
                "stages": [
                    {"name": "a", "run": "detector"},
                    {"name": "b", "run": "classifier", "input": {"from": "x", "crop": {}}},
                ]
            },
            "reads from unknown stage 'x'",
        ),
        ({"stages": [{"name": "a", "run": "detector", "colour": 1}]}, "unknown key 'stages.0.colour'"),
        (
            {"stages": [{"name": "a", "run": "detector", "input": {"from": "a", "crop": {}, "tile": {"size": 8}}}]},
            "give exactly one of crop: or tile:",
        ),
        (
            {
                "stages": [
                    {"name": "a", "run": "quality", "gate": {"class": "good"}, "input": {"from": "b", "crop": {}}},
                    {"name": "b", "run": "detector"},
                ]
            },
            "a gate judges whole images",
        ),
        ({"stages": [{"name": "a", "run": "detector"}, {"name": "a", "run": "detector"}]}, "repeated: a"),
        ({"findings": [{"name": "f", "stage": "clasify"}]}, "unknown stage 'clasify'"),
    ],
)
def test_shape_errors_name_the_problem(change: dict[str, Any], message: str) -> None:
    with pytest.raises(PipelineError, match="Invalid pipeline") as info:
        parse_pipeline(cascade(**change), source="p.yaml")
    assert message in str(info.value)


def test_a_cycle_is_named() -> None:
    stages = [
        {"name": "a", "run": "detector", "input": {"from": "c", "crop": {}}},
        {"name": "b", "run": "detector", "input": {"from": "a", "crop": {}}},
        {"name": "c", "run": "detector", "input": {"from": "b", "crop": {}}},
    ]
    with pytest.raises(PipelineError, match="cycle") as info:
        parse_pipeline(cascade(stages=stages, findings=[]))
    assert all(name in str(info.value) for name in "abc")


@pytest.mark.parametrize(
    ("stages", "findings", "message"),
    [
        (
            [
                {"name": "c1", "run": "classifier"},
                {"name": "c2", "run": "classifier", "input": {"from": "c1", "crop": {}}},
            ],
            [],
            "outputs class; regions come from a detect (boxes) or segment (mask) run",
        ),
        (
            [
                {"name": "d", "run": "detector"},
                {"name": "c", "run": "classifier", "input": {"from": "d", "tile": {"size": 16}}},
            ],
            [],
            "tiles along 'd', which outputs boxes",
        ),
        ([{"name": "g", "run": "detector", "gate": {"class": "fracture"}}], [], "outputs boxes, not classes"),
        ([{"name": "g", "run": "quality", "gate": {"class": "great"}}], [], "gate class 'great' is not one of"),
        (
            [
                {"name": "d", "run": "detector"},
                {"name": "c", "run": "classifier", "input": {"from": "d", "crop": {"classes": ["tumour"]}}},
            ],
            [],
            "classes ['tumour'] are not outputs of 'd'",
        ),
        ([{"name": "c", "run": "classifier"}], [{"name": "f", "stage": "c", "class": "broken"}], "class 'broken'"),
    ],
)
def test_incompatible_outputs_are_refused(stages: list, findings: list, message: str) -> None:
    spec = parse_pipeline(cascade(stages=stages, findings=findings))
    with pytest.raises(PipelineError) as info:
        check_outputs(spec, KINDS, source="p.yaml")
    assert message in str(info.value) and str(info.value).startswith("p.yaml")


def test_default_findings_are_the_last_stages() -> None:
    spec = parse_pipeline(cascade(findings=[]))
    assert [f.stage for f in spec.effective_findings()] == ["classify"]  # detect feeds classify, gate gates


def test_frozen_pipeline_has_absolute_paths_and_versions(tmp_path: Path) -> None:
    spec = parse_pipeline(cascade(), base=tmp_path)
    frozen = spec.frozen({"detector": "abc"})
    assert frozen["runs"]["detector"] == str((tmp_path / "runs/det").resolve())
    assert frozen["versions"] == {"detector": "abc"}
    again = parse_pipeline(frozen)
    assert again.stage("classify").input.source == "detect"  # type: ignore[union-attr]  # the alias round-trips


def test_missing_file_and_bad_yaml(tmp_path: Path) -> None:
    with pytest.raises(PipelineError, match="not found"):
        load_pipeline(tmp_path / "none.yaml")
    (tmp_path / "bad.yaml").write_text("stages: [unclosed")
    with pytest.raises(PipelineError, match="not valid YAML"):
        load_pipeline(tmp_path / "bad.yaml")
