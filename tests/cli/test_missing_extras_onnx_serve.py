"""ONNX export/inference and the server name their extras (`onnx`, `serve`) when the libraries are missing."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from osteon.cli.main import app
from osteon.errors import ConfigError


def test_onnx_backend_names_the_onnx_extra(monkeypatch: pytest.MonkeyPatch, trained_classifier: Path) -> None:
    from osteon.engine import Predictor

    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # import fails as if not installed
    with pytest.raises(ConfigError, match=r"osteon\[onnx\]"):
        Predictor.from_run(trained_classifier, backend="onnx")


def test_export_names_the_onnx_extra(monkeypatch: pytest.MonkeyPatch, trained_classifier: Path) -> None:
    monkeypatch.setitem(sys.modules, "onnx", None)
    result = CliRunner().invoke(app, ["export", str(trained_classifier), "--format", "onnx"])
    assert result.exit_code == 2 and "osteon[onnx]" in result.stderr


def test_server_names_the_serve_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    from osteon.serve import create_app

    monkeypatch.setitem(sys.modules, "fastapi", None)
    with pytest.raises(ConfigError, match=r"osteon\[serve\]"):
        create_app(object())
