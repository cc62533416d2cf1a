"""Bilateral (Siamese, both knees) against single-knee KL grading at the same budget (issue #13, experiment 2).

Data: ../shared/data/knee_kl_bilateral (both knees of 400 patients, natural prevalence). Both runs use the same
Manifest, seed and therefore the same patient-grouped split stratified by grade, the same backbone, image size,
epochs, batch size and learning rate. Test QWK per knee with patient-level bootstrap CIs, and the paired
bootstrap test (resampling patients) of the difference.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bilateral_knee.py --epochs 8 --image-size 128 --model resnet18
"""

from __future__ import annotations

import argparse
import json
import time
import warnings
from pathlib import Path

import pandas as pd

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "knee_kl_bilateral"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--image-size", type=int, default=128)
    parser.add_argument("--model", default="resnet18")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--class-weighting", default="none", help="none | loss | sampler (grades are imbalanced)")
    parser.add_argument("--out", default="runs/bench_bilateral")
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    import torch

    from osteon import metrics
    from osteon.engine import evaluate, train

    torch.set_num_threads(1)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    labels = pd.read_csv(DATA / "labels.csv").drop(columns="source_split")
    labels["image"] = [str(DATA / p) for p in labels["image"]]
    labels["kl_grade"] = labels["kl_grade"].astype(str)
    manifest_csv = out / "manifest.csv"
    labels.to_csv(manifest_csv, index=False)
    common = dict(
        data=str(manifest_csv), target="kl_grade", model=args.model, epochs=args.epochs, image_size=args.image_size,
        batch_size=args.batch_size, lr=args.lr, seed=0, progress=False, class_weighting=args.class_weighting,
    )  # fmt: skip
    results, tables = {}, {}
    for task in ("grade", "bilateral"):
        started = time.perf_counter()
        run = train(task=task, out=str(out / task), **common)
        seconds = time.perf_counter() - started
        report = evaluate(run.path, split="test", n_resamples=1000, progress=False)
        tables[task] = pd.read_csv(run.path / "predictions_test.csv").set_index("image")
        results[task] = {"qwk": report["qwk"], "train_s": round(seconds, 1), "n_test": report["n_images"]}
        print(task, json.dumps(results[task]), flush=True)
    a, b = tables["bilateral"], tables["grade"].loc[tables["bilateral"].index]
    grades = sorted(a["truth"].astype(int).unique())
    diff, ci, p = metrics.paired_bootstrap_test(
        metrics.quadratic_weighted_kappa_score,
        a["truth"].astype(int).to_numpy(),
        a["prediction"].astype(int).to_numpy(),
        b["prediction"].astype(int).to_numpy(),
        groups=a["patient_id"].to_numpy(),
        n_resamples=1000,
    )
    same_split = (out / "grade" / "splits.csv").read_text() == (out / "bilateral" / "splits.csv").read_text()
    results["paired"] = {"qwk_diff": diff, "low": ci.low, "high": ci.high, "p": p, "same_split": same_split}
    results["grades_in_test"] = grades
    print(json.dumps(results, indent=1, default=float))
    (out / "results.json").write_text(json.dumps(results, indent=1, default=float))


if __name__ == "__main__":
    main()
