"""Fine-tuning from a pretrain run: each task's model gets the backbone, the run keeps its provenance (state.json,
model card, HTML report), bad backbones are refused before a run directory is made; and ``probe``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from osteon.engine.config import TrainConfig
from osteon.engine.prepare import prepare
from osteon.errors import ConfigError
from osteon.models.backbone_file import save_backbone
from osteon.models.network import create_backbone
from osteon.models.registry import get_model_entry
from osteon.tasks import build_task

pytestmark = pytest.mark.filterwarnings("ignore")

PROVENANCE = {
    "method": "byol",
    "epochs": 7,
    "data": ["hospital-a/radiographs"],
    "n_images": 321,
    "image_size": 32,
    "created_utc": "2026-01-01T00:00:00+00:00",
    "osteon_version": "0.1.0",
    "run": "pre",
    "final_loss": 0.5,
}


def write_backbone(folder: Path, model: str, in_chans: int = 1) -> Path:
    torch.manual_seed(5)
    backbone = create_backbone(get_model_entry(model), in_chans=in_chans)
    folder.mkdir(parents=True, exist_ok=True)
    save_backbone(folder / "backbone.pt", model, in_chans, backbone.state_dict(), PROVENANCE)
    return folder


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("pretrain_runs")
    return {name: write_backbone(root / name, name) for name in ("tiny_cnn", "resnet18")}


@pytest.fixture(scope="module")
def phantoms(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from osteon.data.phantom import make_phantom_dataset

    out = tmp_path_factory.mktemp("pre_phantom")
    make_phantom_dataset(out, images=40, size=64, seed=2)
    return out / "manifest.csv"


def _expected(run: Path) -> dict[str, torch.Tensor]:
    return torch.load(run / "backbone.pt", weights_only=True)["state_dict"]


@pytest.mark.parametrize(
    ("task", "options", "part"),
    [
        ("classify", {"model": "tiny_cnn", "target": "fractured"}, lambda m: m.backbone),
        ("grade", {"model": "resnet18", "target": "kl_grade"}, lambda m: m.backbone),
        ("segment", {"model": "unet", "encoder": "resnet18"}, lambda m: m.net.encoder),
        ("detect", {"model": "faster_rcnn", "encoder": "resnet18"}, lambda m: m.detector.backbone.body),
        ("tiled", {"model": "tiny_cnn", "target": "fractured", "tile_size": 32}, lambda m: m.backbone),
    ],
)
def test_every_task_builds_its_model_on_the_pretrained_backbone(runs, phantoms, task, options, part) -> None:
    source = runs["tiny_cnn" if options["model"] == "tiny_cnn" else "resnet18"]
    cfg = TrainConfig(task=task, data=str(phantoms), image_size=64, pretrained=str(source), **options)
    prepared = prepare(cfg)
    assert prepared.state_record()["pretrained"]["method"] == "byol"
    model = build_task(prepared.state).build_model(
        model=cfg.model, pretrained=cfg.pretrained, covariate_dim=0, dropout=0.0
    )
    expected = _expected(source)
    for key, value in part(model).state_dict().items():
        assert torch.equal(value, expected[key]), key


def test_fine_tuned_run_records_the_backbone_in_state_card_and_report(runs, phantoms, tmp_path) -> None:
    from osteon.engine import evaluate, train
    from osteon.report import write_report

    source = write_backbone(tmp_path / "pre", "tiny_cnn")
    digest = __import__("hashlib").sha256((source / "backbone.pt").read_bytes()).hexdigest()
    out = tmp_path / "fine"
    train(
        task="classify",
        data=str(phantoms),
        target="fractured",
        model="tiny_cnn",
        pretrained=str(source),
        epochs=1,
        image_size=32,
        batch_size=16,
        out=str(out),
        progress=False,
    )
    record = json.loads((out / "state.json").read_text())["pretrained"]
    assert record["sha256"] == digest and record["path"] == str((source / "backbone.pt").resolve())
    assert record["model"] == "tiny_cnn" and record["epochs"] == 7 and record["n_images"] == 321
    assert record["data"] == ["hospital-a/radiographs"]
    (source / "backbone.pt").unlink()  # the run needs the file no more: resume and report read the run itself
    train(resume=out, epochs=2, progress=False)
    evaluate(out, split="test", n_resamples=50, progress=False)
    html = write_report(out, gallery_size=0, sanity_check=False, n_resamples=50, progress=False).read_text()
    card = (out / "model_card.md").read_text()
    for text in (card, html):
        assert "self-supervised byol backbone" in text and "7 epochs on 321 unlabelled images" in text
        assert digest[:12] in text and "hospital-a/radiographs" in text


def test_bad_backbones_are_refused_before_the_run_directory_is_made(runs, phantoms, tmp_path) -> None:
    from osteon.engine import train

    common = {"task": "classify", "data": str(phantoms), "target": "fractured", "epochs": 1, "progress": False}
    with pytest.raises(ConfigError, match=r"holds a tiny_cnn backbone.*builds model 'resnet18'.*--model tiny_cnn"):
        train(model="resnet18", pretrained=str(runs["tiny_cnn"]), out=str(tmp_path / "a"), **common)
    rgb = write_backbone(tmp_path / "rgb", "tiny_cnn", in_chans=3)
    with pytest.raises(ConfigError, match=r"3 input channel\(s\) ≠ 1"):
        train(model="tiny_cnn", pretrained=str(rgb), out=str(tmp_path / "b"), **common)
    with pytest.raises(ConfigError, match="no encoder"):
        segment = {**common, "task": "segment", "target": None}
        train(**segment, model="unet", pretrained=str(runs["tiny_cnn"]), out=str(tmp_path / "c"))
    assert not any((tmp_path / name).exists() for name in ("a", "b", "c"))


def test_probe_compares_the_backbone_with_a_random_one(runs, phantoms, tmp_path) -> None:
    from osteon.engine.probe import probe
    from osteon.report.probe import write_probe

    result = probe(runs["tiny_cnn"], data=phantoms, target="fractured", n_resamples=50, progress=False)
    assert result["image_size"] == 32  # the pretraining size
    assert [b["label"] for b in result["backbones"]] == ["byol tiny_cnn", "random tiny_cnn"]
    assert result["backbones"][0]["provenance"]["sha256"]
    assert result["classes"] == ["0", "1"] and result["eval_split"] == "test" and result["n_eval"] > 0
    for scores in result["results"].values():
        for name in ("knn", "linear"):
            for metric in ("accuracy", "auc"):
                ci = scores[name][metric]
                assert 0 <= ci["low"] <= ci["estimate"] <= ci["high"] <= 1
    for name in ("knn", "linear"):
        for metric in ("accuracy", "auc"):
            paired = result["comparison"][name][metric]
            assert paired["low"] <= paired["difference"] <= paired["high"] and 0 < paired["p_value"] <= 1
    written = write_probe(result, tmp_path / "probe")
    assert [p.name for p in written] == ["probe.json", "probe.png", "probe.svg", "probe.pdf"]
    assert all(p.stat().st_size > 0 for p in written)
    assert json.loads(written[0].read_text())["results"].keys() == result["results"].keys()


def test_probe_of_random_and_of_a_trained_run(trained_classifier, phantom_dataset) -> None:
    from osteon.engine.probe import probe

    alone = probe("random", model="tiny_cnn", data=phantom_dataset, image_size=32, n_resamples=20, progress=False)
    assert list(alone["results"]) == ["random tiny_cnn"] and alone["comparison"] == {}  # no second random baseline
    trained = probe(trained_classifier, data=phantom_dataset, target="fractured", n_resamples=20, progress=False)
    assert trained["image_size"] == 48 and len(trained["results"]) == 2
    with pytest.raises(ConfigError, match="needs --model"):
        probe("random", data=phantom_dataset, progress=False)
    with pytest.raises(ConfigError, match="no column 'nope'"):
        probe("random", model="tiny_cnn", data=phantom_dataset, target="nope", progress=False)


def test_keypoint_encoder_is_the_pretrained_one(runs, tmp_path) -> None:
    from osteon.data.phantom_landmarks import make_landmark_dataset

    make_landmark_dataset(tmp_path, images=12, size=64, seed=0)
    cfg = TrainConfig(
        task="keypoints", data=str(tmp_path / "manifest.csv"), model="unet", encoder="resnet18", image_size=64
    )
    state = prepare(cfg.model_copy(update={"pretrained": str(runs["resnet18"])})).state
    model = build_task(state).build_model(model="unet", pretrained=str(runs["resnet18"]), covariate_dim=0, dropout=0)
    expected = _expected(runs["resnet18"])
    assert all(torch.equal(v, expected[k]) for k, v in model.net.encoder.state_dict().items())


def test_pretrain_then_fine_tune_and_probe(phantoms, tmp_path) -> None:
    """The real chain: `osteon pretrain` (1 epoch of SimCLR, tiny_cnn) → fine-tune with its run → probe it."""
    pytest.importorskip("lightly")
    from osteon.engine import pretrain, train
    from osteon.engine.probe import probe

    common = {"model": "tiny_cnn", "image_size": 32, "batch_size": 8, "progress": False}
    pre = pretrain(data=[str(phantoms.parent)], method="simclr", epochs=1, out=str(tmp_path / "pre"), **common).path
    expected = _expected(pre)
    captured = {}

    class FirstWeights(__import__("lightning").Callback):
        def on_train_start(self, trainer, module) -> None:
            captured.update({k: v.detach().clone() for k, v in module.model.backbone.state_dict().items()})

    run = train(
        task="classify",
        data=str(phantoms),
        target="fractured",
        pretrained=str(pre),
        epochs=1,
        out=str(tmp_path / "fine"),
        callbacks=[FirstWeights()],
        **common,
    )
    assert captured and all(torch.equal(captured[k], expected[k]) for k in expected)  # training starts from them
    assert json.loads(run.state.read_text())["pretrained"]["method"] == "simclr"
    result = probe(pre, data=phantoms, target="fractured", n_resamples=20, progress=False)
    assert list(result["results"]) == ["simclr tiny_cnn", "random tiny_cnn"]
