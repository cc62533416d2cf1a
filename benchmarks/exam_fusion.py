"""Phantom exams through the engine: ``--task slices`` per series, then ``osteon exam fuse`` (issue #14, exp. 3).

Each exam has 3 series (sagittal, coronal, axial); positive exams carry one faint blob in one slice of the sagittal
series only. One 2.5D run is trained per series, evaluated on its test exams (AUC with CIs by patient), and the runs
are fused per exam (logistic regression fitted on the validation exams). Prints the per-series and fused AUCs, the
fusion weights and how often the key slice of a positive test series is the planted slice.

Usage::

    .venv/bin/python benchmarks/exam_fusion.py --out runs/bench-exam-fusion --exams 80 --pooling max
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import pandas as pd


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("runs/bench-exam-fusion"))
    parser.add_argument("--exams", type=int, default=80)
    parser.add_argument("--slices", type=int, default=8)
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--pooling", default="max", choices=["max", "mean", "attention"])
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    if args.out.exists():
        raise SystemExit(f"{args.out} exists; choose another --out.")
    os.environ.setdefault("OSTEON_VOLUME_CACHE", str(args.out / "cache"))
    from osteon.data.phantom_exams import make_exam_dataset
    from osteon.engine import evaluate, train
    from osteon.pipelines.exam import fuse_runs

    start = time.time()
    manifest = make_exam_dataset(args.out / "data", exams=args.exams, slices=args.slices, size=32, seed=args.seed)
    full = pd.read_csv(manifest)
    runs, results = [], {}
    for series in ("sagittal", "coronal", "axial"):
        part = manifest.parent / f"{series}.csv"
        full[full["series"] == series].to_csv(part, index=False)
        run = train(
            task="slices",
            data=str(part),
            model="tiny_cnn",
            slice_pooling=args.pooling,
            epochs=args.epochs,
            image_size=32,
            batch_size=8,
            lr=3e-3,
            out=str(args.out / f"run_{series}"),
            progress=False,
            threads=1,
        )
        results[series] = evaluate(run.path, split="test", progress=False)["auc"]
        runs.append(run.path)
    fused = fuse_runs(runs, out=args.out / "fused", names=["sagittal", "coronal", "axial"])
    table = pd.read_csv(runs[0] / "predictions_test.csv")
    truth = full[full["series"] == "sagittal"].assign(image=lambda f: [str(manifest.parent / p) for p in f["image"]])
    joined = table.merge(truth[["image", "finding_slice", "label"]], on="image")
    positives = joined[joined["label"] == 1]
    summary = {
        "series_auc": results,
        "fused_auc": fused["fused"]["auc"],
        "weights": json.loads((args.out / "fused" / "fusion.json").read_text())["fusion"]["coef"],
        "key_slice_hits": float((positives["key_slice"] == positives["finding_slice"]).mean()),
        "positives_test": len(positives),
        "seconds": round(time.time() - start, 1),
    }
    print(json.dumps(summary, indent=2, default=float))


if __name__ == "__main__":
    main()
