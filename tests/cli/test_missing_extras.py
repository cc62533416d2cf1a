"""Each optional part of issue 15 names its extra when the extra's libraries are missing."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from osteon.cli.main import app
from osteon.errors import ConfigError


def test_deidentify_names_the_deid_extra(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setitem(sys.modules, "dicomanonymizer", None)  # import fails as if not installed
    (tmp_path / "in").mkdir()
    result = CliRunner().invoke(app, ["data", "deidentify", str(tmp_path / "in"), str(tmp_path / "out")])
    assert result.exit_code == 2 and "osteon[deid]" in result.stderr


def test_pacs_bridge_names_the_pacs_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    from osteon.serve.pacs.bridge import require_pacs

    monkeypatch.setitem(sys.modules, "dicomweb_client", None)
    with pytest.raises(ConfigError, match=r"osteon\[pacs\]"):
        require_pacs()


def test_ray_engine_names_the_distributed_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    from osteon.engine.distributed import require_ray

    monkeypatch.setitem(sys.modules, "ray", None)
    with pytest.raises(ConfigError, match=r"osteon\[distributed\]"):
        require_ray()


def test_unknown_engine_is_refused(trained_classifier: Path, phantom_dataset: Path, tmp_path: Path) -> None:
    args = ["predict", str(trained_classifier), str(phantom_dataset), "--out", str(tmp_path / "p.csv")]
    result = CliRunner().invoke(app, [*args, "--engine", "spark"])
    assert result.exit_code == 2 and "--engine local or --engine ray" in result.stderr


def test_gpu_workers_are_refused_while_the_predictor_runs_on_cpu(trained_classifier: Path, tmp_path: Path) -> None:
    pytest.importorskip("ray", reason="extra `distributed` (ray[data]) is not installed")
    import pandas as pd

    from osteon.data.manifest import Manifest
    from osteon.engine.distributed import predict_sharded

    manifest = Manifest(pd.DataFrame({"image": ["a.png"], "patient_id": ["p"]}), root=tmp_path)
    with pytest.raises(ConfigError, match="gpus-per-worker"):
        predict_sharded(trained_classifier, manifest, tmp_path / "o.csv", gpus_per_worker=1)
