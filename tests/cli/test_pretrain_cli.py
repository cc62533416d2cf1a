"""``osteon pretrain``: help without torch, a tiny run with its loss figure, resume, and one-line errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from osteon.cli.main import app

runner = CliRunner()

HELP_WITHOUT_TORCH = """
import json, sys
from typer.testing import CliRunner
from osteon.cli.main import app
codes = [CliRunner().invoke(app, args).exit_code for args in (["--help"], ["pretrain", "--help"])]
heavy = sorted(m for m in ("torch", "torchvision", "lightning", "timm", "lightly") if m in sys.modules)
print(json.dumps({"codes": codes, "heavy": heavy}))
"""


def test_help_lists_pretrain_and_imports_no_torch() -> None:
    done = subprocess.run(
        [sys.executable, "-c", HELP_WITHOUT_TORCH], capture_output=True, text=True, timeout=300, check=False
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result == {"codes": [0, 0], "heavy": []}
    listing = runner.invoke(app, ["--help"], env={"COLUMNS": "200"})
    assert "pretrain" in listing.stdout
    text = runner.invoke(app, ["pretrain", "--help"], env={"COLUMNS": "200"}).stdout
    for flag in ("--method", "--model", "--epochs", "--image-size", "--batch-size", "--out", "--resume", "--hflip"):
        assert flag in text


@pytest.fixture(scope="module")
def images(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from osteon.data.phantom import make_phantom_dataset

    out = tmp_path_factory.mktemp("cli_pretrain")
    make_phantom_dataset(out, images=12, size=48, seed=1)
    return out / "images"  # a plain folder of PNGs (the manifest beside it is not used)


def test_pretrain_run_and_resume(images: Path, tmp_path: Path) -> None:
    pytest.importorskip("lightly")
    pytest.importorskip("torch").set_num_threads(1)
    out = tmp_path / "run"
    common = ["--model", "tiny_cnn", "--image-size", "32", "--batch-size", "6", "--threads", "1"]
    result = runner.invoke(app, ["pretrain", str(images), "--method", "simclr", "--epochs", "1", "--out", str(out),
                                 *common])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert result.stdout.strip().splitlines()[-1] == str(out)
    assert "backbone.pt" in result.stderr and (out / "figures" / "loss_curve.png").is_file()
    from osteon.models.backbone_file import read_backbone

    assert read_backbone(out / "backbone.pt")["provenance"]["n_images"] == 12
    again = runner.invoke(app, ["pretrain", "--resume", str(out), "--epochs", "2"])
    assert again.exit_code == 0, again.output
    assert read_backbone(out / "backbone.pt")["provenance"]["epochs"] == 2


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["pretrain", "--method", "simclr"], "no DATA given"),
        (["pretrain", ".", "--resume", "somewhere"], "drop the DATA arguments"),
        (["pretrain", ".", "--epochs", "0"], "--epochs"),
        (["pretrain", "no/such/folder", "--epochs", "1"], "no such file or folder"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(args: list[str], message: str, tmp_path: Path) -> None:
    pytest.importorskip("lightly")
    result = runner.invoke(app, [*args, "--out", str(tmp_path / "run")])
    assert result.exit_code == 2, result.output
    assert "Error:" in result.stderr and message in " ".join(result.stderr.split())


def test_engine_pretrain_stays_the_function_after_its_module_is_imported() -> None:
    import importlib
    import types

    importlib.import_module("osteon.engine.pretrain")
    from osteon.engine import pretrain

    assert not isinstance(pretrain, types.ModuleType) and pretrain.__name__ == "pretrain"
