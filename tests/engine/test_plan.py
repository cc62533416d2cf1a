"""``osteon plan``: the fingerprint of a dataset and the config planned for each strategy, used by train --plan."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from osteon.cli.main import app
from osteon.engine.config import TrainConfig
from osteon.engine.plan import make_plan, plan_options, strategies, write_plan
from osteon.errors import ConfigError


@pytest.fixture(scope="module")
def phantom_plan(phantom_dataset: Path) -> dict:
    return make_plan(phantom_dataset, sample=16)


def test_fingerprint_of_the_phantoms(phantom_plan: dict) -> None:
    fp = phantom_plan["fingerprint"]
    assert fp["images"] == 96 and fp["patients"] == 48 and fp["images_per_patient"]["max"] == 2
    assert fp["image_sample"]["read"] == 16 and fp["image_sample"]["short_side_median"] == 64
    assert fp["image_sample"]["bits_stored"] == {"16": 16}  # the phantoms are 16-bit PNGs
    assert 0 < fp["boxes"]["relative_side"]["p10"] <= fp["boxes"]["relative_side"]["median"] < 1
    assert 0 < fp["masks"]["foreground_fraction"]["median"] < 1
    assert fp["labels"]["classes"] == {
        "fractured": fp["labels"]["classes"]["fractured"],
        "normal": 96 - fp["labels"]["classes"]["fractured"],
    }
    assert fp["duplicates"]["images_in_duplicate_groups"] == 0
    assert fp["laterality"] == {"L": 48, "R": 48}


def test_every_strategy_is_planned_with_reasons(phantom_plan: dict) -> None:
    plans = phantom_plan["strategies"]
    assert set(plans) == {"segment", "detect", "classify", "regress"}
    assert phantom_plan["recommended"] == "segment"  # masks are the richest annotation
    for task, plan in plans.items():
        cfg = plan["config"]
        TrainConfig(**{**cfg, "out": "runs/x"})  # every planned config is a valid TrainConfig
        assert cfg["task"] == task and cfg["data"].endswith("manifest.csv")
        assert {"image_size", "epochs", "hflip"} <= set(plan["reasons"]) | {"hflip"}
        assert cfg["hflip"] is True  # both knees occur: a mirrored knee is a real knee
    assert plans["detect"]["config"]["model"] == "centernet"
    assert plans["regress"]["config"]["loss"] == "l1"


def test_grades_ultrasound_and_imbalance_rules() -> None:
    fp = {
        "images": 300,
        "patients": None,
        "splits": {},
        "annotations": {"masks": 0, "polygons": 0, "boxes": 0},
        "labels": {"n_classes": 5, "consecutive_whole_numbers": True, "imbalance_ratio": 6.0},
        "image_sample": {"short_side_median": 600, "modality": {"US": 3}, "rgb_fraction": 1.0},
    }
    plans = strategies(fp, "gpu")
    grade = plans["grade"]
    assert grade["config"]["loss"] == "corn" and grade["config"]["class_weighting"] == "loss"
    assert grade["config"]["rotate_degrees"] == 5.0 and grade["config"]["hflip"] is False
    assert grade["config"]["channels"] == "rgb" and grade["config"]["model"] == "convnext_tiny"
    assert any("no patient ids" in w for w in grade["warnings"]) and any(
        "cross-validation" in w for w in grade["warnings"]
    )
    assert plans["classify"]["config"].get("loss") is None
    tiny = strategies({**fp, "images": 40}, "cpu")["grade"]
    assert any("too few to train" in w for w in tiny["warnings"]) and tiny["config"]["model"] == "resnet18"


def test_small_structures_warn_that_a_segmenter_may_predict_nothing() -> None:
    fp = {
        "images": 900,
        "patients": None,
        "splits": {},
        "annotations": {"masks": 0, "polygons": 700, "boxes": 700},
        "labels": {},
        "image_sample": {"short_side_median": 373},
        "boxes": {"relative_side": {"p10": 0.039, "median": 0.065}},
    }
    warnings = strategies(fp, "cpu")["segment"]["warnings"]
    assert any("may predict empty masks" in w and "about 17 px at 256 px" in w for w in warnings)
    large = {**fp, "boxes": {"relative_side": {"p10": 0.2, "median": 0.3}}}
    assert not any("empty masks" in w for w in strategies(large, "cpu")["segment"]["warnings"])


def test_plan_options_and_train_with_a_plan(phantom_plan: dict, tmp_path: Path) -> None:
    path = write_plan(phantom_plan, tmp_path / "plan.yaml")
    with pytest.raises(FileExistsError):
        write_plan(phantom_plan, path)
    options = plan_options(path, task="classify", given={"epochs": 1, "model": "tiny_cnn", "task": "classify"})
    assert options["epochs"] == 1 and options["model"] == "tiny_cnn" and options["image_size"] == 224
    assert plan_options(path)["task"] == "segment"
    with pytest.raises(ConfigError, match="no config for task 'grade'"):
        plan_options(path, task="grade")
    (tmp_path / "bad.yaml").write_text(yaml.safe_dump({"a": 1}))
    with pytest.raises(ConfigError, match=r"not a plan\.yaml"):
        plan_options(tmp_path / "bad.yaml")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = CliRunner().invoke(
            app,
            [
                "train",
                "--plan",
                str(path),
                "--task",
                "classify",
                "--target",
                "fractured",
                "--model",
                "tiny_cnn",
                "--epochs",
                "1",
                "--image-size",
                "32",
                "--batch-size",
                "16",
                "--out",
                str(tmp_path / "run"),
            ],
        )
    assert result.exit_code == 0, result.output
    saved = yaml.safe_load((tmp_path / "run" / "config.yaml").read_text())
    assert saved["hflip"] is True and saved["image_size"] == 32 and saved["rotate_degrees"] == 10.0
    # a YAML config lies over the plan, flags over both
    (tmp_path / "cfg.yaml").write_text(
        yaml.safe_dump({"task": "classify", "target": "fractured", "rotate_degrees": 3.0})
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = CliRunner().invoke(
            app,
            [
                "train",
                str(tmp_path / "cfg.yaml"),
                "--plan",
                str(path),
                "--model",
                "tiny_cnn",
                "--epochs",
                "1",
                "--image-size",
                "32",
                "--out",
                str(tmp_path / "run2"),
            ],
        )
    assert result.exit_code == 0, result.output
    saved = yaml.safe_load((tmp_path / "run2" / "config.yaml").read_text())
    assert saved["task"] == "classify" and saved["rotate_degrees"] == 3.0 and saved["hflip"] is True


@pytest.mark.shared_data
@pytest.mark.parametrize(
    ("folder", "options", "recommended", "planned"),
    [
        ("fracatlas", {}, "segment", {"segment", "detect", "classify"}),
        ("knee_kl_chen2018", {}, "grade", {"grade", "classify"}),
        ("knee_kl_bilateral/labels.csv", {"label_column": "kl_grade"}, "grade", {"grade", "classify"}),
        ("muscle_us_dltrack/index.csv", {}, "segment", {"segment"}),
        (
            "grazpedwri_dx_sample/dataset.csv",
            {"format": "csv", "image_template": "images/{filestem}.png", "target_column": "age"},
            "regress",
            {"regress"},
        ),
    ],
)
def test_plan_on_the_shared_datasets(shared_data: Path, folder, options, recommended, planned) -> None:
    plan = make_plan(shared_data / folder, sample=12, **options)
    assert plan["recommended"] == recommended
    assert planned <= set(plan["strategies"])
    for entry in plan["strategies"].values():
        TrainConfig(**{**entry["config"], "out": "runs/x"})
    if folder == "fracatlas":  # its fracture masks are small: measured, the planned U-Net predicted none
        assert any("may predict empty masks" in w for w in plan["strategies"]["segment"]["warnings"])


@pytest.mark.shared_data
def test_data_without_anything_to_learn_are_refused(shared_data: Path) -> None:
    with pytest.raises(ConfigError, match="nothing to learn"):  # DICOMs and landmark JSON: no label column
        make_plan(shared_data / "ddh_pelvis_xray_dicom", sample=4)
