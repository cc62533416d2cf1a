from __future__ import annotations

from pathlib import Path

import pytest

from osteon.engine.config import TrainConfig
from osteon.errors import ConfigError


def test_precedence_defaults_yaml_flags(tmp_path: Path) -> None:
    yaml_file = tmp_path / "cfg.yaml"
    yaml_file.write_text("task: grade\ndata: somewhere\nepochs: 7\nimage-size: 96\n")
    cfg = TrainConfig.from_sources(yaml_file, epochs=3, lr=None)
    assert cfg.epochs == 3  # flag beats YAML
    assert cfg.image_size == 96  # YAML beats default (dashes accepted in YAML keys)
    assert cfg.lr == TrainConfig.model_fields["lr"].default  # None means "not given"


def test_saved_config_round_trips(tmp_path: Path) -> None:
    cfg = TrainConfig.from_sources(task="classify", data="d", covariates="age, sex", hflip=True)
    again = TrainConfig.load(cfg.save(tmp_path / "config.yaml"))
    assert again == cfg
    assert again.covariates == ["age", "sex"]


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"epoch": 3}, "did you mean epochs"),
        ({"precision": "fp8"}, "precision='fp8' is not one of"),
        ({"task": "cluster"}, "task"),
        ({"epochs": 0}, "epochs"),
        ({"class_weighting": "focal"}, "class_weighting"),
    ],
)
def test_bad_values_name_the_option(overrides: dict, expected: str) -> None:
    with pytest.raises(ConfigError, match=expected):
        TrainConfig.from_sources(**{"task": "classify", "data": "d", **overrides})


def test_missing_required_option_says_which_flag() -> None:
    with pytest.raises(ConfigError, match="--data"):
        TrainConfig.from_sources(task="classify")


def test_yaml_that_is_not_a_mapping(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("- a\n- b\n")
    with pytest.raises(ConfigError, match="expected a mapping"):
        TrainConfig.from_sources(bad)
