"""Issue #14 experiments: colour ultrasound, landmarks on phantoms, 3D segmentation of phantom volumes.

Experiments (pick with ``--only``):

* ``dltrack``: DL_Track muscle ultrasound (aponeurosis masks), RGB input vs forced grey, same budget: test Dice
  with bootstrap CIs (no patient ids are published: splits and CIs are by image).
* ``nhbs``: NHBS-Net infant hip ultrasound, standard vs substandard plane (51 files, 50 distinct): test AUC with
  CI. With about 8 test images the interval is very wide; the number says that the path works, not how good it is.
* ``landmarks``: spine phantoms with four endplate landmarks: mean radial error (px, mm), success within
  2/2.5/4 mm and the Cobb angle's Bland–Altman against the drawn angle.
* ``volumes3d``: phantom ellipsoids in noisy volumes (anisotropic spacing), MONAI 3D U-Net, sliding window:
  Dice, HD95 in mm and volume error in mL over held-out volumes.

Usage::

    .venv/bin/python benchmarks/modalities.py --only dltrack,nhbs,landmarks,volumes3d --threads 1
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import SHARED_DATA, ci, load_average, log, machine_info, new_out_dir, set_threads, write_summary


def dltrack(out: Path, args: argparse.Namespace) -> dict:
    from osteon.engine import evaluate, train

    root = SHARED_DATA / "muscle_us_dltrack"
    index = pd.read_csv(root / "index.csv")
    index = index[index["structure"] == "aponeurosis"]
    frame = pd.DataFrame(
        {
            "image": [str((root / p).resolve()) for p in index["image"]],
            "mask": [str((root / p).resolve()) for p in index["mask"]],
            "patient_id": [Path(p).stem for p in index["image"]],
        }
    )
    manifest = out / "dltrack.csv"
    frame.to_csv(manifest, index=False)
    results = {}
    for channels in ("rgb", "grey"):
        started = time.perf_counter()
        run = train(
            task="segment",
            data=str(manifest),
            model=args.seg_model,
            encoder=args.encoder,
            channels=channels,
            epochs=args.seg_epochs,
            image_size=args.seg_size,
            batch_size=8,
            lr=3e-3,
            seed=0,
            out=str(out / f"dltrack_{channels}"),
            progress=False,
            threads=args.threads or None,
        )
        result = evaluate(run.path, split="test")
        results[channels] = {
            "dice": result.get("mean_dice") or result.get("dice"),
            "n_images": result["n_images"],
            "seconds": round(time.perf_counter() - started, 1),
            "result_keys": sorted(result),
        }
        (out / f"dltrack_{channels}.json").write_text(json.dumps(result, default=str, indent=1))
        log(f"dltrack {channels}: {json.dumps(results[channels]['dice'], default=str)[:200]}")
    from osteon.metrics import paired_bootstrap_test

    rgb = pd.read_csv(out / "dltrack_rgb" / "predictions_test.csv")
    grey = pd.read_csv(out / "dltrack_grey" / "predictions_test.csv")
    column = next(c for c in rgb.columns if str(c).startswith("dice_"))
    diff, interval, p = paired_bootstrap_test(
        lambda _y, d: float(np.mean(d)),
        np.zeros(len(rgb)),
        rgb[column].to_numpy(float),
        grey[column].to_numpy(float),
        n_resamples=2000,
    )
    results["rgb_minus_grey"] = {"estimate": diff, "low": interval.low, "high": interval.high, "p": p}
    return results


def nhbs(out: Path, args: argparse.Namespace) -> dict:
    from osteon.engine import evaluate, train

    root = SHARED_DATA / "hip_us_nhbs_spj"
    rows = [
        {
            "image": str(p.resolve()),
            "label": "standard" if p.parent.name == "standard_ultrasound" else "substandard",
            "patient_id": p.stem,
        }
        for p in sorted(root.rglob("*.png"))
    ]
    manifest = out / "nhbs.csv"
    pd.DataFrame(rows).to_csv(manifest, index=False)
    started = time.perf_counter()
    run = train(
        task="classify",
        data=str(manifest),
        model=args.cls_model,
        epochs=args.cls_epochs,
        image_size=128,
        batch_size=8,
        lr=1e-3,
        val_fraction=0.2,
        test_fraction=0.2,
        positive_class="standard",
        seed=0,
        out=str(out / "nhbs"),
        progress=False,
        threads=args.threads or None,
    )
    result = evaluate(run.path, split="test")
    state = run.read_json(run.state)
    return {
        "auc": result.get("auc"),
        "n_images": result["n_images"],
        "channels": state["preprocessing"].get("channels"),
        "seconds": round(time.perf_counter() - started, 1),
    }


def landmarks(out: Path, args: argparse.Namespace) -> dict:
    from osteon.data.phantom_landmarks import make_landmark_dataset
    from osteon.engine import evaluate, train

    make_landmark_dataset(out / "spine", images=args.lm_images, size=args.lm_size, seed=0)
    started = time.perf_counter()
    run = train(
        task="keypoints",
        data=str(out / "spine" / "manifest.csv"),
        model="tiny_unet",
        epochs=args.lm_epochs,
        image_size=args.lm_size,
        batch_size=8,
        lr=3e-3,
        seed=0,
        out=str(out / "keypoints"),
        progress=False,
        threads=args.threads or None,
    )
    result = evaluate(run.path, split="test")
    cobb = result["measurements"].get("cobb_angle", {})
    return {
        "n_images": result["n_images"],
        "mre_px": result["mre_px"],
        "mre_mm": result["mre_mm"],
        "sdr": result["sdr"],
        "cobb_mae": cobb.get("mae"),
        "cobb_bland_altman": cobb.get("bland_altman"),
        "seconds": round(time.perf_counter() - started, 1),
    }


def volumes3d(out: Path, args: argparse.Namespace) -> dict:
    import torch
    from monai.losses import DiceCELoss

    from osteon.data.phantom_volumes import make_volume_phantom
    from osteon.metrics.volumes import volume_metrics, volume_segmentation_report
    from osteon.models.volumes import create_volume_model, sliding_window_logits

    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    shape = (24, 48, 48)
    train_pairs = [make_volume_phantom(rng, shape=shape) for _ in range(args.vol_train)]
    test_pairs = [make_volume_phantom(rng, shape=shape) for _ in range(args.vol_test)]
    model = create_volume_model(args.vol_model, 1, 1)
    optimiser = torch.optim.Adam(model.parameters(), lr=3e-3)
    loss_fn = DiceCELoss(sigmoid=True)
    started = time.perf_counter()
    patch = (16, 32, 32)
    for step in range(args.vol_steps):  # random patches: memory bounded by the patch, not the volume
        xs, ys = [], []
        for _ in range(4):
            image, label = train_pairs[rng.integers(len(train_pairs))]
            d, h, w = (rng.integers(0, s - p + 1) for s, p in zip(shape, patch, strict=True))
            xs.append(torch.from_numpy(image.array[d : d + 16, h : h + 32, w : w + 32])[None])
            ys.append(torch.from_numpy(label.array[d : d + 16, h : h + 32, w : w + 32].astype(np.float32))[None])
        optimiser.zero_grad()
        loss = loss_fn(model(torch.stack(xs)), torch.stack(ys))
        loss.backward()
        optimiser.step()
        if step % 50 == 0:
            log(f"volumes3d step {step} loss {float(loss):.3f}")
    model.eval()
    rows = []
    for image, label in test_pairs:
        logits = sliding_window_logits(model, torch.from_numpy(image.array)[None, None], roi=patch, overlap=0.5)
        rows.append(volume_metrics(label.array, (torch.sigmoid(logits)[0, 0] > 0.5).numpy(), image.spacing))
    report = volume_segmentation_report(rows, n_resamples=1000)
    return {"report": report, "seconds": round(time.perf_counter() - started, 1), "shape": shape, "spacing": [2, 1, 1]}


def exams(out: Path, args: argparse.Namespace) -> dict:
    """Exam phantoms: 3 series, a finding in one slice of the sagittal series; one 2.5D model per series, fused."""
    import torch

    from osteon.data.phantom_exams import make_exam_phantoms
    from osteon.metrics import bootstrap_ci, roc_auc_score
    from osteon.models.slices import ExamFusion, create_slice_model

    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    series = ("sagittal", "coronal", "axial")
    images, labels, where = make_exam_phantoms(rng, args.exam_n, series=series, slices=8, size=32)
    n_train, n_val = int(0.6 * args.exam_n), int(0.2 * args.exam_n)
    parts = {"train": slice(0, n_train), "val": slice(n_train, n_train + n_val), "test": slice(n_train + n_val, None)}
    started = time.perf_counter()
    scores = {name: np.zeros((len(labels[part]), len(series))) for name, part in parts.items()}
    hits = {}
    for s, name in enumerate(series):
        model = create_slice_model("tiny_cnn", 1, pooling="attention")
        optimiser = torch.optim.Adam(model.parameters(), lr=3e-3)
        x = torch.from_numpy(images[:, s])
        y = torch.from_numpy(labels).float()
        for _ in range(args.exam_epochs):
            order = torch.randperm(n_train)
            for start in range(0, n_train, 16):
                batch = order[start : start + 16]
                optimiser.zero_grad()
                loss = torch.nn.functional.binary_cross_entropy_with_logits(model(x[batch])[:, 0], y[batch])
                loss.backward()
                optimiser.step()
        model.eval()
        with torch.no_grad():
            for part_name, part in parts.items():
                scores[part_name][:, s] = torch.sigmoid(model(x[part])[:, 0]).numpy()
                if part_name == "test" and name == "sagittal":
                    positive = labels[part] == 1
                    chosen = model.last_weights.numpy().argmax(1)
                    hits["sagittal_attention_on_planted_slice"] = float(
                        np.mean(chosen[positive] == where[part][positive])
                    )
        log(f"exams: {name} trained")
    fusion = ExamFusion(list(series)).fit(scores["val"], labels[parts["val"]])
    y_test = labels[parts["test"]]
    fused = fusion.predict_proba(scores["test"])

    def auc(values: np.ndarray) -> dict:
        interval = bootstrap_ci(roc_auc_score, y_test, values, n_resamples=1000)
        return {"estimate": interval.estimate, "low": interval.low, "high": interval.high}

    return {
        "n_test": len(y_test),
        "auc_fused": auc(fused),
        "auc_per_series": {name: auc(scores["test"][:, s]) for s, name in enumerate(series)},
        "fusion": fusion.to_dict(),
        **hits,
        "seconds": round(time.perf_counter() - started, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default="dltrack,nhbs,landmarks,volumes3d")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seg-model", default="unet")
    parser.add_argument("--encoder", default="resnet18")
    parser.add_argument("--seg-epochs", type=int, default=8)
    parser.add_argument("--seg-size", type=int, default=128)
    parser.add_argument("--cls-model", default="resnet18")
    parser.add_argument("--cls-epochs", type=int, default=10)
    parser.add_argument("--lm-images", type=int, default=160)
    parser.add_argument("--lm-size", type=int, default=96)
    parser.add_argument("--lm-epochs", type=int, default=25)
    parser.add_argument("--vol-model", default="tiny_unet3d")
    parser.add_argument("--vol-train", type=int, default=12)
    parser.add_argument("--vol-test", type=int, default=10)
    parser.add_argument("--vol-steps", type=int, default=300)
    parser.add_argument("--exam-n", type=int, default=200)
    parser.add_argument("--exam-epochs", type=int, default=10)
    args = parser.parse_args()
    set_threads(args.threads)
    warnings.filterwarnings("ignore")
    out = new_out_dir("modalities")
    summary: dict = {"machine": machine_info(), "args": vars(args), "load_start": load_average()}
    for name in args.only.split(","):
        log(f"{name}: start (load {load_average()})")
        summary[name] = globals()[name](out, args)
        write_summary(out, summary)
    summary["load_end"] = load_average()
    write_summary(out, summary)
    print(json.dumps(summary, default=str, indent=1))
    for name in args.only.split(","):
        entry = summary[name]
        if name == "landmarks":
            print(
                f"| landmarks | MRE px {ci(entry['mre_px'])} | MRE mm {ci(entry['mre_mm'])} "
                f"| Cobb MAE {ci(entry['cobb_mae'])} |"
            )
        if name == "nhbs":
            print(f"| nhbs | AUC {ci(entry['auc'])} | n={entry['n_images']} |")


if __name__ == "__main__":
    main()
