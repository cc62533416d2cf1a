"""Real RGB ultrasound (shared data): DL_Track muscle masks (segment) and NHBS hip planes (classify).

Tiny budgets: these check that colour screen captures are read as they are, that the run records RGB input,
and that Predictor reproduces it; accuracy is measured in ``benchmarks/ultrasound_colour.py``.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

pytestmark = pytest.mark.shared_data


def hip_manifest(shared_data: Path, out: Path) -> Path:
    """NHBS-Net SPJ: ``standard`` vs ``substandard`` (all five reasons pooled), one row per file."""
    root = shared_data / "hip_us_nhbs_spj"
    rows = [
        {
            "image": str(p),
            "label": "standard" if p.parts[-2] == "standard_ultrasound" else "substandard",
            "patient_id": p.stem,
        }
        for p in sorted(root.rglob("*.png"))
    ]
    frame = pd.DataFrame(rows)
    frame.to_csv(out, index=False)
    return out


def muscle_manifest(shared_data: Path, out: Path, *, structure: str = "aponeurosis", n: int = 24) -> Path:
    index = pd.read_csv(shared_data / "muscle_us_dltrack" / "index.csv")
    index = index[index["structure"] == structure].head(n)
    root = shared_data / "muscle_us_dltrack"
    frame = pd.DataFrame(
        {
            "image": [str(root / p) for p in index["image"]],
            "mask": [str(root / p) for p in index["mask"]],
            "patient_id": [Path(p).stem for p in index["image"]],
        }
    )
    frame.to_csv(out, index=False)
    return out


def test_hip_ultrasound_channels_follow_the_data(shared_data: Path, tmp_path: Path) -> None:
    """NHBS captures are RGB files whose three channels are equal: auto keeps them grey (nothing is lost)."""
    from osteon.data.channels import choose_channels
    from osteon.io import is_colour, read_image

    manifest = pd.read_csv(hip_manifest(shared_data, tmp_path / "hip.csv"))
    assert len(manifest) == 51 and set(manifest["label"]) == {"standard", "substandard"}
    first = read_image(manifest["image"].iloc[0])
    assert first.array.shape == (256, 256, 3) and first.photometric == "RGB"
    choice = choose_channels([Path(p) for p in manifest["image"]], sample=60)
    assert not any(is_colour(read_image(p)) for p in manifest["image"])
    assert choice.channels == 1, choice
    muscle = shared_data / "muscle_us_dltrack" / "aponeurosis" / "images"
    assert choose_channels(sorted(muscle.glob("*.png"))).channels == 3  # coloured markers on the capture


def test_hip_ultrasound_classify_rgb(shared_data: Path, tmp_path: Path) -> None:
    from osteon.engine import Predictor, train

    manifest = hip_manifest(shared_data, tmp_path / "hip.csv")
    run = train(
        task="classify",
        data=str(manifest),
        model="tiny_cnn",
        epochs=1,
        image_size=48,
        batch_size=16,
        channels="rgb",
        val_fraction=0.2,
        test_fraction=0.2,
        out=str(tmp_path / "hip"),
        progress=False,
    )
    state = run.read_json(run.state)
    assert state["preprocessing"]["channels"] == 3
    predictor = Predictor.from_run(run.path)
    frame = predictor.predict_paths(pd.read_csv(manifest)["image"].head(3).tolist(), progress=False)
    assert (frame["error"] == "").all() and frame["prediction"].isin(["standard", "substandard"]).all()


def test_muscle_ultrasound_segment_rgb(shared_data: Path, tmp_path: Path) -> None:
    from osteon.engine import Predictor, train

    manifest = muscle_manifest(shared_data, tmp_path / "muscle.csv", n=16)
    run = train(
        task="segment",
        data=str(manifest),
        model="tiny_unet",
        epochs=1,
        image_size=64,
        batch_size=8,
        val_fraction=0.25,
        test_fraction=0.1,
        out=str(tmp_path / "muscle"),
        progress=False,
    )
    state = run.read_json(run.state)
    assert state["preprocessing"]["channels"] == 3, state["task"]["extra"].get("channels_reason")
    predictor = Predictor.from_run(run.path)
    image = pd.read_csv(manifest)["image"].iloc[0]
    prediction = predictor.predict_image(image)
    assert prediction.mask.shape == (688, 1234)  # the original pixel grid of the 1234×688 capture
