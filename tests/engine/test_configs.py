"""The example configs in configs/ stay valid as the config schema evolves."""

from __future__ import annotations

from pathlib import Path

import pytest

from osteon.engine.config import TaskName, TrainConfig

CONFIGS = sorted((Path(__file__).resolve().parents[2] / "configs").glob("*.yaml"))


@pytest.mark.parametrize("path", CONFIGS, ids=[p.stem for p in CONFIGS])
def test_example_config_loads(path: Path) -> None:
    cfg = TrainConfig.load(path)
    assert cfg.task in {t.value for t in TaskName} and Path(cfg.data).name


def test_there_are_example_configs() -> None:
    assert {p.stem for p in CONFIGS} >= {"fracatlas_fracture", "knee_kl"}
