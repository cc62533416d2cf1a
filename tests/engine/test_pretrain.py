"""Self-supervised pretraining (``osteon.engine.pretrain``): backbone.pt, resume, and the errors of bad inputs.

Tiny runs: 16 phantom radiographs, tiny_cnn at 32 px (timm's 160 px ``test_vit`` for MAE), one or two epochs.
"""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

import lightning as L
import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from osteon.engine import pretrain
from osteon.engine.rundir import RunDir
from osteon.errors import ConfigError, RunDirError
from osteon.models import get_model_entry
from osteon.models.backbone_file import BACKBONE_FORMAT, read_backbone, save_backbone
from osteon.models.network import create_backbone

pytest.importorskip("lightly")

TINY = {"model": "tiny_cnn", "image_size": 32, "batch_size": 8, "threads": 1, "seed": 1, "progress": False}


@pytest.fixture(scope="module")
def phantoms(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """16 phantom radiographs with their manifest (labels are there and must be ignored)."""
    from osteon.data.phantom import make_phantom_dataset

    out = tmp_path_factory.mktemp("pretrain_phantoms")
    make_phantom_dataset(out, images=16, size=48, seed=0)
    return out


class InitialWeights(L.Callback):
    """The backbone's weights when training starts (after a resume: the restored ones)."""

    def on_train_start(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        self.weights = {k: v.detach().clone() for k, v in module.method.backbone.state_dict().items()}


class CrashAtEpochStart(L.Callback):
    def __init__(self, epoch: int) -> None:
        self.epoch = epoch

    def on_train_epoch_start(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        if trainer.current_epoch == self.epoch:
            raise RuntimeError("simulated crash")


def _changed(before: dict[str, torch.Tensor], after: dict[str, torch.Tensor]) -> list[str]:
    return [k for k in before if before[k].is_floating_point() and not torch.allclose(before[k], after[k])]


@pytest.mark.parametrize("method", ["simclr", "byol", "dino"])
def test_pretraining_writes_a_backbone_that_changed(phantoms: Path, tmp_path: Path, method: str) -> None:
    initial = InitialWeights()
    run = pretrain(
        data=[str(phantoms)], method=method, epochs=2, out=str(tmp_path / method), callbacks=[initial], **TINY
    )
    record = torch.load(run.path / "backbone.pt", map_location="cpu", weights_only=True)  # the contract: plain data
    assert record["format"] == BACKBONE_FORMAT and read_backbone(run.path / "backbone.pt")["model"] == "tiny_cnn"
    assert (record["model"], record["in_chans"]) == ("tiny_cnn", 1)
    provenance = record["provenance"]
    assert provenance["method"] == method and provenance["epochs"] == 2 and provenance["data"] == [str(phantoms)]
    assert (
        provenance["n_images"] == 12 and provenance["image_size"] == 32
    )  # the 4 test-split phantoms left out and provenance["run"] == method
    assert np.isfinite(provenance["final_loss"]) and provenance["osteon_version"]
    backbone = create_backbone(get_model_entry("tiny_cnn"), in_chans=1, pretrained=None)
    backbone.load_state_dict(record["state_dict"])  # strict: exactly the registry backbone's keys
    assert _changed(initial.weights, record["state_dict"]), "pretraining left every weight as it was"
    log = pd.read_csv(run.metrics_log)
    assert log.dropna(subset=["train/loss"])["epoch"].tolist() == [0, 1]
    assert run.last_checkpoint.is_file() and (run.path / "images.csv").is_file()


def test_mae_trains_a_vit(phantoms: Path, tmp_path: Path) -> None:
    run = pretrain(
        data=[str(phantoms)], method="mae", model="timm:test_vit", image_size=160, batch_size=8, epochs=1,
        out=str(tmp_path / "mae"), threads=1, progress=False,
    )  # fmt: skip
    record = read_backbone(run.path / "backbone.pt")
    assert record["model"] == "timm:test_vit" and record["provenance"]["method"] == "mae"
    create_backbone(get_model_entry("timm:test_vit"), in_chans=1).load_state_dict(record["state_dict"])


def test_mae_needs_a_vit_at_its_size(phantoms: Path, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"not one\. Fix: use --model timm:vit_"):
        pretrain(data=[str(phantoms)], method="mae", epochs=1, out=str(tmp_path / "a"), **TINY)
    with pytest.raises(ConfigError, match=r"takes 160 px .* --image-size 160"):
        pretrain(data=[str(phantoms)], method="mae", model="timm:test_vit", image_size=64, out=str(tmp_path / "b"))
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


def test_resume_after_a_crash_equals_the_uninterrupted_run(phantoms: Path, tmp_path: Path) -> None:
    whole = pretrain(data=[str(phantoms)], method="byol", epochs=3, out=str(tmp_path / "whole"), **TINY)
    crashed = tmp_path / "crashed"
    with pytest.raises(RuntimeError, match="simulated crash"):
        pretrain(data=[str(phantoms)], method="byol", epochs=3, out=str(crashed), callbacks=[CrashAtEpochStart(2)],
                 **TINY)  # fmt: skip
    assert not (crashed / "backbone.pt").exists() and (crashed / "checkpoints" / "last.ckpt").is_file()
    with pytest.raises(RunDirError, match="--resume"):  # the run is never overwritten
        pretrain(data=[str(phantoms)], method="byol", epochs=3, out=str(crashed), **TINY)
    resumed = pretrain(resume=crashed, progress=False)
    a, b = read_backbone(whole.path / "backbone.pt"), read_backbone(resumed.path / "backbone.pt")
    assert b["provenance"]["epochs"] == 3
    for name, value in a["state_dict"].items():
        assert torch.allclose(value, b["state_dict"][name]), name
    log = pd.read_csv(resumed.metrics_log).dropna(subset=["train/loss"])
    assert log["epoch"].tolist() == [0, 1, 2]
    sessions = resumed.read_json(resumed.training)["sessions"]
    assert [(s["first_epoch"], s["last_epoch"]) for s in sessions] == [(0, 1), (2, 2)]


def test_a_finished_run_is_extended_only_with_more_epochs(phantoms: Path, tmp_path: Path) -> None:
    run = pretrain(data=[str(phantoms)], method="simclr", epochs=1, out=str(tmp_path / "run"), **TINY)
    with pytest.raises(RunDirError, match=r"already pretrained 1 epochs.*--epochs"):
        pretrain(resume=run.path, epochs=1, progress=False)
    pretrain(resume=run.path, epochs=2, progress=False)
    assert read_backbone(run.path / "backbone.pt")["provenance"]["epochs"] == 2
    assert read_backbone(run.path / "backbone_epochs1.pt")["provenance"]["epochs"] == 1  # the one used before


def test_plain_folder_several_data_and_unreadable_images(phantoms: Path, tmp_path: Path) -> None:
    folder = tmp_path / "unlabelled" / "nested"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i in range(3):
        Image.fromarray((rng.random((40, 50)) * 255).astype(np.uint8)).save(folder / f"img{i}.png")
    (folder / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    (folder / "masks").mkdir()  # annotations beside the images are not pretrained on
    Image.fromarray(np.zeros((40, 50), np.uint8)).save(folder / "masks" / "img0.png")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        run = pretrain(data=[str(tmp_path / "unlabelled"), str(phantoms)], method="simclr", epochs=1,
                       out=str(tmp_path / "run"), **TINY)  # fmt: skip
    messages = [str(w.message) for w in caught if "could not be read" in str(w.message)]
    assert len(messages) == 1 and "1 of 16 images" in messages[0] and "broken.png" in messages[0]
    assert read_backbone(run.path / "backbone.pt")["provenance"]["n_images"] == 15
    assert "(1 in mask folders left out), 4 images" in run.read_json(run.state)["pretrain"]["sources"][0]
    excluded = pd.read_csv(run.excluded)
    assert excluded["image"].str.endswith("broken.png").tolist() == [True]


def test_bad_inputs_name_the_problem_and_the_fix(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConfigError, match=r"no images found in .*empty\. Fix:"):
        pretrain(data=[str(tmp_path / "empty")], epochs=1, out=str(tmp_path / "r1"), **TINY)
    with pytest.raises(ConfigError, match=r"missing: no such file or folder"):
        pretrain(data=[str(tmp_path / "missing")], epochs=1, out=str(tmp_path / "r2"), **TINY)
    with pytest.raises(ConfigError, match=r"--epochs: .*greater than or equal to 1"):
        pretrain(data=[str(tmp_path)], epochs=0, out=str(tmp_path / "r3"), **TINY)
    with pytest.raises(ConfigError, match=r"--method: .*not one of simclr, byol, dino, mae"):
        pretrain(data=[str(tmp_path)], method="moco", out=str(tmp_path / "r4"), **TINY)
    with pytest.raises(RunDirError, match=r"no config\.yaml"):
        pretrain(resume=tmp_path / "empty")


def test_missing_lightly_names_the_extra(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setitem(sys.modules, "lightly", None)
    with pytest.raises(ConfigError, match=r"osteon\[pretrain\]"):
        pretrain(data=[str(tmp_path)], out=str(tmp_path / "r"), **TINY)


def test_read_backbone_refuses_damaged_and_foreign_files(tmp_path: Path) -> None:
    state = create_backbone(get_model_entry("tiny_cnn"), in_chans=1).state_dict()
    provenance = dict.fromkeys(
        ("method", "epochs", "data", "n_images", "image_size", "created_utc", "osteon_version", "run", "final_loss"), 1
    )
    good = save_backbone(tmp_path / "backbone.pt", "tiny_cnn", 1, state, provenance)
    assert read_backbone(good)["model"] == "tiny_cnn"
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(good.read_bytes()[:200])
    foreign = tmp_path / "state_dict.pt"
    torch.save(state, foreign)
    no_provenance = tmp_path / "no_provenance.pt"
    torch.save({"format": BACKBONE_FORMAT, "model": "tiny_cnn", "in_chans": 1, "state_dict": state}, no_provenance)
    for path, problem in (
        (tmp_path / "absent.pt", "no such backbone file"),
        (truncated, "cannot be read as a backbone file"),
        (foreign, "not an Osteon backbone file"),
        (no_provenance, "damaged backbone file .no provenance"),
    ):
        with pytest.raises(ConfigError, match=rf"{path.name}: {problem}.*Fix: pass the backbone\.pt"):
            read_backbone(path)
    with pytest.raises(ConfigError, match="in_chans"):
        save_backbone(tmp_path / "x.pt", "tiny_cnn", 2, state, provenance)


def test_run_directory_is_a_run(phantoms: Path, tmp_path: Path) -> None:
    run = pretrain(data=[str(phantoms)], method="simclr", epochs=1, out=str(tmp_path / "run"), **TINY)
    assert RunDir.open(run.path, need_model=False).config.is_file()
    state = run.read_json(run.state)
    assert state["pretrain"]["n_images"] == 12 and state["preprocessing"]["mean"] == 0.5
    assert "(4 images of its test split left out), 12 images" in state["pretrain"]["sources"][0]
    every = pretrain(data=[str(phantoms)], exclude_splits="none", epochs=1, out=str(tmp_path / "all"), **TINY)
    assert every.read_json(every.state)["pretrain"]["n_images"] == 16


def test_colour_backbone_has_three_input_channels(phantoms: Path, tmp_path: Path) -> None:
    run = pretrain(data=[str(phantoms)], method="simclr", channels="rgb", epochs=1, out=str(tmp_path / "rgb"), **TINY)
    record = read_backbone(run.path / "backbone.pt")
    assert record["in_chans"] == 3
    create_backbone(get_model_entry("tiny_cnn"), in_chans=3).load_state_dict(record["state_dict"])
