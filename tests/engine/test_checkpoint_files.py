"""Corrupt run files give an Osteon error naming the file and the fix, not a torch traceback (issue #10, D6)."""

from __future__ import annotations

import pickle
import shutil
from pathlib import Path

import pytest
import torch

from osteon.engine.checkpoint import check_training_checkpoint, load_model_file, save_model_file
from osteon.errors import RunDirError


@pytest.fixture
def model_file(tmp_path: Path) -> Path:
    path = tmp_path / "model.pt"
    save_model_file(path, state_dict={"w": torch.arange(4096, dtype=torch.float32)}, meta={"task": {}})
    return path


def _truncate(path: Path, keep: float = 0.5) -> Path:
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])
    return path


def test_good_model_file_loads(model_file: Path) -> None:
    payload = load_model_file(model_file)
    assert torch.equal(payload["state_dict"]["w"], torch.arange(4096, dtype=torch.float32))


@pytest.mark.parametrize("keep", [0.0, 0.1, 0.5, 0.99])
def test_truncated_model_file_names_the_file(model_file: Path, keep: float) -> None:
    _truncate(model_file, keep)
    with pytest.raises(RunDirError, match=r"model\.pt: the model file .*(empty|truncated or corrupt).*Fix:") as info:
        load_model_file(model_file)
    assert str(model_file) in str(info.value)


def test_flipped_byte_is_found_by_checksum(model_file: Path) -> None:
    data = bytearray(model_file.read_bytes())
    start = data.find(b"data/0") + 200  # inside the tensor's bytes
    data[start] ^= 0xFF
    model_file.write_bytes(bytes(data))
    with pytest.raises(RunDirError, match=r"model\.pt: the model file is corrupt"):
        load_model_file(model_file)


def test_foreign_pickle_is_refused_without_running_it(tmp_path: Path) -> None:
    path = tmp_path / "model.pt"
    torch.save({"state_dict": {}, "meta": {}, "format_version": 1, "obj": pickle.PickleError()}, path)
    with pytest.raises(RunDirError, match="refused to load"):
        load_model_file(path)


def test_not_an_osteon_model_file(tmp_path: Path) -> None:
    path = tmp_path / "model.pt"
    torch.save([torch.zeros(2)], path)
    with pytest.raises(RunDirError, match="not an Osteon model file"):
        load_model_file(path)


def test_training_checkpoint_check(tmp_path: Path) -> None:
    ckpt = tmp_path / "checkpoints" / "last.ckpt"
    ckpt.parent.mkdir()
    torch.save({"state_dict": {"w": torch.ones(2048)}, "epoch": 3}, ckpt)
    assert check_training_checkpoint(ckpt) == ckpt
    _truncate(ckpt, 0.6)
    with pytest.raises(
        RunDirError, match=r"last\.ckpt: the training checkpoint is truncated or corrupt.*--out NEW_RUN"
    ):
        check_training_checkpoint(ckpt)
    with pytest.raises(RunDirError, match="no such training checkpoint"):
        check_training_checkpoint(tmp_path / "nowhere.ckpt")


def test_predict_with_corrupt_model_is_one_line_naming_the_file(trained_classifier: Path, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from osteon.cli.main import app

    run = tmp_path / "run"
    shutil.copytree(trained_classifier, run)
    _truncate(run / "model.pt", 0.5)
    image = tmp_path / "x.png"  # never read: the model file is checked first
    result = CliRunner().invoke(app, ["predict", str(run), str(image), "--out", str(tmp_path / "p.csv")])
    assert result.exit_code == 2, result.output
    assert "model.pt" in result.stderr and "truncated or corrupt" in result.stderr
    assert "Traceback" not in result.output
