"""The tutorials in docs/tutorials never rot: every command and flag exists, and each runs on phantoms in a fast mode.

Fast mode replaces the real datasets by the synthetic phantoms (tests/conftest.py), trains a tiny model for one
epoch at 32 px, uses 2 folds and few bootstrap resamples, and leaves out the reader study (it needs readers).
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
from typer.testing import CliRunner

from osteon.cli.main import app

DOCS = Path(__file__).resolve().parents[2] / "docs"
TUTORIALS = sorted((DOCS / "tutorials").glob("*.md"))
WIDE = {"COLUMNS": "250", "TERMINAL_WIDTH": "250"}
SUBCOMMAND_GROUPS = {"data", "pipeline"}

#: Fast-mode substitutions per tutorial: real data → the phantoms, and extra flags for some commands.
FAST = {
    "fracture-classification.md": {"extra": {}},
    "kl-grading.md": {"extra": {"train": ["--task", "grade"]}, "phantom": "kl_grade"},  # label = KL grade; masks too
    "fracture-detection.md": {
        "extra": {"train": ["--model", "faster_rcnn", "--encoder", "resnet18", "--image-size", "64"]}
    },
    "ultrasound-segmentation.md": {
        "extra": {"train": ["--model", "unet", "--encoder", "resnet18", "--patch-size", "32"]}
    },
    # The pipeline file is the tutorial's own ```yaml block (first line `# file: NAME`), with each stage's training
    # options shrunk per task; the tutorial writes no report.html, so its evaluation output is checked instead.
    "pipeline.md": {
        "extra": {},
        "stage_options": {
            "detect": {"image_size": 64, "batch_size": 4},
            "classify": {"model": "tiny_cnn", "image_size": 32, "batch_size": 16},
        },
        "outputs": "cascade-eval/metrics.json",
    },
}
TINY = ["--model", "tiny_cnn", "--epochs", "1", "--image-size", "32", "--batch-size", "16"]


def commands(path: Path) -> list[list[str]]:
    """The ``osteon ...`` command lines of the tutorial's ```bash blocks, split like a shell would."""
    blocks = re.findall(r"```bash\n(.*?)```", path.read_text(), flags=re.S)
    return [shlex.split(line)[1:] for block in blocks for line in block.splitlines() if line.startswith("osteon ")]


def pipeline_files(path: Path, stage_options: dict[str, dict]) -> dict[str, str]:
    """The ```yaml blocks starting with ``# file: NAME``, each stage's ``train.options`` updated per task."""
    import yaml

    files = {}
    for block in re.findall(r"```yaml\n(.*?)```", path.read_text(), flags=re.S):
        first = block.splitlines()[0]
        if not first.startswith("# file: "):
            continue
        spec = yaml.safe_load(block)
        for stage in spec.get("stages", []):
            options = stage.get("train", {}).get("options")
            if options is not None:
                options.update(stage_options.get(options.get("task"), {}))
        files[first.removeprefix("# file: ").strip()] = yaml.safe_dump(spec, sort_keys=False)
    return files


def command_path(args: list[str]) -> list[str]:
    return args[:2] if args[0] in SUBCOMMAND_GROUPS else args[:1]


def test_every_tutorial_is_listed_and_has_commands() -> None:
    index = (DOCS / "tutorials" / "index.md").read_text()
    mkdocs = (DOCS.parent / "mkdocs.yml").read_text()
    for path in TUTORIALS:
        if path.name == "index.md":
            continue
        assert path.name in index and f"tutorials/{path.name}" in mkdocs, path.name
        assert commands(path), path.name
        assert path.name in FAST, f"add {path.name} to FAST"


@pytest.mark.parametrize("path", [p for p in TUTORIALS if p.name != "index.md"], ids=lambda p: p.stem)
def test_every_command_and_flag_exists(path: Path) -> None:
    runner = CliRunner()
    for args in commands(path):
        sub = command_path(args)
        result = runner.invoke(app, [*sub, "--help"], env=WIDE)
        assert result.exit_code == 0, f"{path.name}: osteon {' '.join(sub)} does not exist"
        for flag in (a.split("=")[0] for a in args if a.startswith("--")):
            assert flag in result.output, f"{path.name}: osteon {' '.join(sub)} has no option {flag}"


def fast_args(args: list[str], tutorial: str, phantom: Path, image: Path) -> list[str] | None:
    """The command in fast mode, or None when it is left out."""
    if "--readers" in args:
        return None
    out = []
    for a in args:
        if a.startswith("../shared/data/"):
            a = str(image) if a.endswith((".jpg", ".png")) else str(phantom)
        out.append(a)
    sub = command_path(out)
    if "--folds" in out:
        out[out.index("--folds") + 1] = "2"
    extra = FAST[tutorial]["extra"].get(sub[0], [])
    if sub[0] in ("train", "cv"):
        out += TINY + extra
    elif sub[0] == "evaluate":
        out += ["--n-resamples", "50"]
    elif sub[0] == "report":
        out += ["--gallery-size", "1", "--no-sanity-check", "--n-resamples", "50"]
    elif sub[0] == "plan":
        out += ["--sample", "8"]
    elif sub == ["pipeline", "train"]:
        out += ["--epochs", "1"]
    elif sub == ["pipeline", "evaluate"]:
        out += ["--n-resamples", "50"]
    return out


@pytest.mark.slow
@pytest.mark.parametrize("path", [p for p in TUTORIALS if p.name != "index.md"], ids=lambda p: p.stem)
def test_tutorial_runs_in_fast_mode(path: Path, phantom_dataset: Path, tmp_path: Path) -> None:
    data = tmp_path / "phantom"
    kind = FAST[path.name].get("phantom")
    if kind is None:
        shutil.copytree(phantom_dataset.parent, data)
    else:
        from osteon.data.phantom import make_phantom_dataset

        make_phantom_dataset(data, images=96, size=64, seed=0, task=kind)
    image = next((data / "images").glob("*.png"))
    for name, text in pipeline_files(path, FAST[path.name].get("stage_options", {})).items():
        (tmp_path / name).write_text(text)
    runner = CliRunner()
    cwd = Path.cwd()
    os.chdir(tmp_path)
    try:
        for args in commands(path):
            fast = fast_args(args, path.name, data / "manifest.csv", image)
            if fast is None:
                continue
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                result = runner.invoke(app, fast)
            assert result.exit_code == 0, f"osteon {shlex.join(fast)}\n{result.output}"
    finally:
        os.chdir(cwd)
    if "outputs" in FAST[path.name]:
        assert (tmp_path / FAST[path.name]["outputs"]).is_file()
    else:
        assert list(tmp_path.glob("runs/*/report.html")) or list(tmp_path.glob("runs/*/*/report.html"))


def test_docs_build_offline(tmp_path: Path) -> None:
    if shutil.which("mkdocs") is None and not (Path(sys.executable).parent / "mkdocs").exists():
        pytest.skip("mkdocs is not installed (extra 'docs': pip install 'osteon[docs]')")
    mkdocs = shutil.which("mkdocs") or str(Path(sys.executable).parent / "mkdocs")
    done = subprocess.run(
        [mkdocs, "build", "--strict", "--site-dir", str(tmp_path / "site")],
        cwd=DOCS.parent,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "site" / "tutorials" / "fracture-classification" / "index.html").is_file()
