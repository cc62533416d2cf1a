"""FracAtlas fracture detection: Osteon's default detector vs Ultralytics YOLOv8n, same wall-clock budget.

Both train on the authors' fracture split as present in the shared subset (train 481 / val 73 / test 54
fractured images; the 366 non-fractured images have no split there and are not trained on), at the same
image size, and both are scored by Osteon's evaluation (pycocotools mAP@0.5 and @0.5:0.95, FROC, with
bootstrap CIs). Budget: Osteon trains first for whole epochs sized to ``--budget-min`` from a measured
throughput (a random subset of the train split when not even one epoch fits); YOLO then gets exactly the
wall-clock time Osteon used (Ultralytics' ``time`` argument). The image-level AUC needs negatives, so each
model is also evaluated on the 54 test fractures + the 366 held-out non-fractured images.

Also measured: inference images/s at the training size (end to end, files → boxes) and video frames/s
on a synthetic clip of phantom frames (PyAV), for both backends.

Usage::

    .venv/bin/python benchmarks/fracatlas_detection.py --budget-min 12 --image-size 256 --threads 1
"""

from __future__ import annotations

import argparse
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from _common import (
    SHARED_DATA,
    Stopwatch,
    ci,
    load_average,
    log,
    machine_info,
    new_out_dir,
    quiet_lightning,
    set_threads,
    write_summary,
)
from _progress import EpochLog

RATES = ("0.125", "0.25", "0.5", "1", "2", "4", "8")


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default=str(SHARED_DATA / "fracatlas"))
    p.add_argument("--budget-min", type=float, default=12.0, help="Wall-clock training budget per model")
    p.add_argument("--image-size", type=int, default=256)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--model", default="retinanet")
    p.add_argument("--encoder", default="resnet18")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--score-threshold", type=float, default=0.001, help="Lowest box score kept, both models (COCO-eval style)"
    )
    p.add_argument("--n-resamples", type=int, default=1000)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--skip-yolo", action="store_true")
    p.add_argument("--out-root", default="runs")
    return p.parse_args()


def authors_split_file(data: str, out: Path, *, keep_fraction: float, seed: int) -> tuple[Path, Any]:
    """splits.csv with the authors' split (negatives unsplit); optionally only a random part of train."""
    from osteon.data.adapters import load_dataset

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        manifest = load_dataset(data)
    split = manifest.frame["split"].copy()
    train = np.flatnonzero((split == "train").fillna(False).to_numpy())
    if keep_fraction < 1:
        rng = np.random.default_rng(seed)
        dropped = rng.choice(train, size=len(train) - max(8, int(len(train) * keep_fraction)), replace=False)
        split.iloc[dropped] = pd.NA
    path = out / "authors_split.csv"
    pd.DataFrame({"image": manifest.frame["image"], "split": split}).to_csv(path, index=False)
    return path, manifest


def seconds_per_train_image(args: argparse.Namespace, n_train: int) -> float:
    """Measured training time per image of the Osteon detector (3 steps after a warm-up, random input)."""
    import torch

    from osteon.models.detection import DetectorSpec, build_detector

    s = args.image_size
    sizes = tuple(tuple(8.0 * 2**i * f for f in (1, 1.26, 1.59)) for i in range(5))
    model = build_detector(DetectorSpec("retinanet", args.encoder, 1, s, sizes, fpn_channels=128))
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    x = torch.randn(args.batch_size, 1, s, s)
    targets = [{"boxes": torch.tensor([[40.0, 40, 70, 60]]), "labels": torch.tensor([0])}] * args.batch_size
    times = []
    for step in range(4):
        start = time.perf_counter()
        loss = sum(model.losses(x, targets).values())
        opt.zero_grad()
        loss.backward()  # type: ignore[union-attr]
        opt.step()
        if step:
            times.append(time.perf_counter() - start)
    return float(np.median(times)) / args.batch_size


def inference_speed(run: Path, images: list[Path], clip: Path) -> dict[str, float]:
    from osteon.engine import Predictor

    predictor = Predictor.from_run(run)
    predictor.predict_paths(images[:4], progress=False)  # warm-up
    with Stopwatch() as sw:
        predictor.predict_paths(images, batch_size=8, progress=False)
    _, fps = predictor.predict_video(clip, batch_size=8)
    return {"images_per_s": round(len(images) / sw.seconds, 2), "video_frames_per_s": round(fps, 2)}


def synthetic_clip(out: Path, size: int, frames: int = 48) -> Path:
    from osteon.data.phantom import make_phantom
    from osteon.io.video import write_video

    rng = np.random.default_rng(0)
    arrays = [
        make_phantom(rng, size=size, fracture=bool(i % 2), kl_grade=None)[0].astype(np.float32) / 65535
        for i in range(frames)
    ]
    return write_video(out / "phantom_clip.mp4", arrays, fps=15)


def negatives_manifest(manifest: Any, out: Path) -> Path:
    """Test fractures + the held-out non-fractured images as one 'test' split (for the image-level AUC)."""
    frame = manifest.frame.copy()
    keep = (frame["split"] == "test").fillna(False) | (frame["label"] == "non_fractured")
    frame = frame[keep.to_numpy()].copy()
    frame["split"] = "test"
    frame["image"] = [str(manifest.resolve(p)) for p in frame["image"]]
    path = out / "test_plus_negatives.csv"
    frame.to_csv(path, index=False)
    return path


def metrics_row(name: str, result: dict[str, Any]) -> dict[str, Any]:
    froc = result["froc"]["sensitivity_at_fp_per_image"]
    return {
        "model": name,
        "map50": result["map50"],
        "map50_95": result["map50_95"],
        "froc": {r: froc[r] for r in RATES},
        "froc_mean": result["froc"]["mean_sensitivity"],
        "n_predicted_boxes": result["n_predicted_boxes"],
    }


def markdown(rows: list[dict[str, Any]], speeds: dict[str, Any], aucs: dict[str, Any]) -> str:
    lines = [
        "| model | mAP@0.5 | mAP@0.5:0.95 | FROC sens. @0.5 / 1 / 2 / 4 FP/img | mean FROC sens. | image AUC (+neg) "
        "| img/s | video fps |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        f = r["froc"]
        sens = " / ".join(f"{f[k]['estimate']:.2f}" for k in ("0.5", "1", "2", "4"))
        s = speeds.get(r["model"], {})
        lines.append(
            f"| {r['model']} | {ci(r['map50'])} | {ci(r['map50_95'])} | {sens} | {ci(r['froc_mean'])} | "
            f"{ci(aucs.get(r['model']))} | {s.get('images_per_s', 'n/a')} | {s.get('video_frames_per_s', 'n/a')} |"
        )
    return "\n".join(lines)


def main() -> None:
    args = parse_args()
    threads = set_threads(args.threads)
    quiet_lightning()
    out = new_out_dir("fracatlas_detection", args.out_root)
    machine = machine_info()
    log(f"FracAtlas detection benchmark → {out}; torch threads {threads}; machine {machine}")
    from osteon.engine import evaluate, train
    from osteon.engine.backends.yolo import train_yolo

    budget = args.budget_min * 60
    _, manifest = authors_split_file(args.data, out, keep_fraction=1.0, seed=args.seed)
    n_train = int((manifest.frame["split"] == "train").sum())
    n_val = int((manifest.frame["split"] == "val").sum())
    per_image = seconds_per_train_image(args, n_train)
    epoch_seconds = per_image * (n_train + 0.4 * n_val) * 1.1  # + validation (forward only) + overhead
    epochs = round(budget / epoch_seconds)  # whole epochs closest to the budget
    fraction = 1.0 if epochs >= 1 else budget / epoch_seconds
    epochs = max(1, epochs)
    split_file, _ = authors_split_file(args.data, out, keep_fraction=fraction, seed=args.seed)
    log(f"{per_image:.2f} s per train image → {epochs} epoch(s) on {fraction:.0%} of train in {args.budget_min} min")

    common = {"task": "detect", "data": args.data, "split_file": str(split_file), "image_size": args.image_size}
    common |= {"batch_size": args.batch_size, "seed": args.seed, "score_threshold": args.score_threshold}
    epoch_log = EpochLog("osteon")
    load_before = load_average()
    with Stopwatch() as t_osteon, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        osteon_run = train(
            **common,
            model=args.model,
            encoder=args.encoder,
            epochs=epochs,
            lr=args.lr,
            out=str(out / "osteon"),
            callbacks=[epoch_log],
            progress=False,
        )
    log(f"Osteon trained in {t_osteon.seconds:.0f} s")
    runs = {f"osteon {args.model}-{args.encoder}": osteon_run.path}
    t_yolo = None
    if not args.skip_yolo:
        with Stopwatch() as t_yolo, warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yolo_run = train_yolo(
                **common,
                model="yolov8n",
                epochs=300,
                out=str(out / "yolo"),
                ultralytics_args={"time": t_osteon.seconds / 3600, "verbose": False},
            )
        log(f"YOLOv8n trained in {t_yolo.seconds:.0f} s (budget {t_osteon.seconds:.0f} s of training)")
        runs["ultralytics yolov8n"] = yolo_run.path

    test_images = [manifest.resolve(p) for p in manifest.frame.loc[manifest.frame["split"] == "test", "image"]]
    clip = synthetic_clip(out, args.image_size)
    plus_negatives = negatives_manifest(manifest, out)
    rows, speeds, aucs, full = [], {}, {}, {}
    for name, path in runs.items():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            result = evaluate(path, split="test", n_resamples=args.n_resamples, progress=False)
            with_negatives = evaluate(
                path, split="test", data=plus_negatives, n_resamples=args.n_resamples, progress=False
            )
        rows.append(metrics_row(name, result))
        aucs[name] = with_negatives["image_auc"]
        full[name] = {"test": result, "test_plus_negatives": {k: with_negatives[k] for k in ("image_auc", "froc")}}
        speeds[name] = inference_speed(path, test_images, clip)
        log(f"{name}: mAP@0.5 {ci(result['map50'])}; speed {speeds[name]}")
    table = markdown(rows, speeds, aucs)
    ratio = None
    if len(rows) == 2:
        a, b = rows[0]["map50"]["estimate"], rows[1]["map50"]["estimate"]
        ratio = round(a / b, 3) if b else None
    summary = {
        "benchmark": "fracatlas_detection",
        "out": str(out),
        "machine": machine,
        "torch_threads": threads,
        "recipe": {k: v for k, v in vars(args).items() if k != "out_root"},
        "split": {"train": n_train, "val": n_val, "test": len(test_images), "train_fraction_used": round(fraction, 3)},
        "osteon_epochs": epochs,
        "osteon_seconds_per_train_image_probe": round(per_image, 3),
        "train_seconds": {"osteon": round(t_osteon.seconds, 1), "yolo": round(t_yolo.seconds, 1) if t_yolo else None},
        "epochs_log": epoch_log.epochs,
        "load_before": load_before,
        "load_after": load_average(),
        "rows": rows,
        "speeds": speeds,
        "image_auc_test_plus_negatives": aucs,
        "map50_ratio_osteon_over_yolo": ratio,
        "markdown": table,
        "details": full,
    }
    write_summary(out, summary)
    print("\n" + table, flush=True)


if __name__ == "__main__":
    main()
