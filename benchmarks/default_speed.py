"""Training and inference images/s of every strategy's default model, end to end from files (FracAtlas JPEGs).

For each strategy — ``classify`` (fractured yes/no), ``detect`` (fracture boxes), ``segment`` (fracture masks) —
``osteon.engine.train`` runs with no model or recipe flag (only the input size, epochs and threads), on the
same random FracAtlas images (``--train`` train, ``--val`` val; every other image left out), so each row is
what ``osteon train --task T`` does by default:

* **train img/s** = training images × epochs / the training loop's wall time (``training.json``:
  augmentation, forward, backward, validation every epoch);
* **train img/s end to end** = the same over the whole ``train`` call (JPEG decoding, letterbox and caching of
  the 2–8 MP radiographs included);
* **predict img/s** = ``Predictor.from_run(run).predict_paths`` on ``--test`` other JPEGs (decode, letterbox,
  model, post-processing: probabilities, boxes in original pixels, masks in original pixels), PyTorch and, where
  the task exports, ONNX Runtime (``osteon export``).

Input sizes are the recipes' documented ones (classify 224, segment 256, detect 512 with the planned training crops).

Usage::

    .venv/bin/python benchmarks/default_speed.py --threads 1
"""

from __future__ import annotations

import argparse
import json
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml
from _common import (
    SHARED_DATA,
    Stopwatch,
    load_average,
    log,
    machine_info,
    new_out_dir,
    quiet_lightning,
    set_threads,
    write_summary,
)

SIZES = {"classify": 224, "segment": 256, "detect": 512}


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default=str(SHARED_DATA / "fracatlas"))
    p.add_argument("--tasks", nargs="+", default=list(SIZES), choices=list(SIZES))
    p.add_argument("--train", type=int, default=96)
    p.add_argument("--val", type=int, default=32)
    p.add_argument("--test", type=int, default=64)
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out-root", default="runs")
    return p.parse_args()


def subset_split(data: str, out: Path, args: argparse.Namespace) -> tuple[Path, list[Path]]:
    """A split file with random train/val images (the rest unsplit: left out) and the test image paths."""
    from osteon.data.adapters import load_dataset

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        manifest = load_dataset(data)
    rng = np.random.default_rng(args.seed)
    order = rng.permutation(len(manifest.frame))
    split = pd.Series(pd.NA, index=manifest.frame.index, dtype="string")
    split.iloc[order[: args.train]] = "train"
    split.iloc[order[args.train : args.train + args.val]] = "val"
    test = order[args.train + args.val : args.train + args.val + args.test]
    path = out / "split.csv"
    pd.DataFrame({"image": manifest.frame["image"], "split": split}).to_csv(path, index=False)
    return path, [manifest.resolve(manifest.frame["image"].iloc[i]) for i in test]


def predict_speed(run: Path, images: list[Path], backend: str) -> float:
    from osteon.engine import Predictor

    predictor = Predictor.from_run(run, backend=backend)
    predictor.predict_paths(images[:4], progress=False)  # warm-up
    with Stopwatch() as sw:
        predictor.predict_paths(images, batch_size=16, progress=False)
    return round(len(images) / sw.seconds, 2)


def onnx_speed(run: Path, images: list[Path]) -> float | str:
    from osteon.engine.export_onnx import export_onnx
    from osteon.errors import ConfigError

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            export_onnx(run, max_metric_drop=1.0)
    except ConfigError as exc:
        return f"n/a ({str(exc).split('.')[0]})"
    return predict_speed(run, images, "onnx")


def main() -> None:
    args = parse_args()
    threads = set_threads(args.threads)
    quiet_lightning()
    out = new_out_dir("default_speed", args.out_root)
    machine = machine_info()
    log(f"default models' speed → {out}; torch threads {threads}; {machine}")
    from osteon.engine import train

    split, test_images = subset_split(args.data, out, args)
    rows: list[dict[str, Any]] = []
    load_before = load_average()
    for task in args.tasks:
        with Stopwatch() as sw, warnings.catch_warnings():
            warnings.simplefilter("ignore")
            run = train(
                task=task,
                data=args.data,
                split_file=str(split),
                image_size=SIZES[task],
                epochs=args.epochs,
                threads=args.threads,
                seed=args.seed,
                out=str(out / task),
                progress=False,
            )
        training = json.loads(run.training.read_text())
        config = yaml.safe_load(run.config.read_text())
        plan = json.loads(run.plan.read_text()) if run.plan.is_file() else {}
        seen = args.train * int(training.get("epochs_run") or args.epochs)
        row = {
            "task": task,
            "model": plan.get("architecture", config["model"]),
            "encoder": (plan.get("encoder") or config.get("encoder") or "").removeprefix("timm:"),
            "image_size": SIZES[task],
            "train_img_s": round(seen / float(training["duration_s"]), 2),
            "train_img_s_end_to_end": round(seen / sw.seconds, 2),
            "predict_img_s_torch": predict_speed(run.path, test_images, "torch"),
            "predict_img_s_onnx": onnx_speed(run.path, test_images),
        }
        rows.append(row)
        log(f"{task}: {row}")
    table = "\n".join(
        [
            "| strategy | default model | input px | train img/s (loop) | train img/s (end to end) "
            "| predict img/s (torch) | predict img/s (ONNX) |",
            "|---|---|---|---|---|---|---|",
            *(
                f"| {r['task']} | {r['model']} {r['encoder']} | {r['image_size']} | {r['train_img_s']} | "
                f"{r['train_img_s_end_to_end']} | {r['predict_img_s_torch']} | {r['predict_img_s_onnx']} |"
                for r in rows
            ),
        ]
    )
    summary = {
        "benchmark": "default_speed",
        "out": str(out),
        "machine": machine,
        "torch_threads": threads,
        "recipe": {k: v for k, v in vars(args).items() if k != "out_root"},
        "load_before": load_before,
        "load_after": load_average(),
        "rows": rows,
        "markdown": table,
    }
    write_summary(out, summary)
    print("\n" + table, flush=True)


if __name__ == "__main__":
    main()
