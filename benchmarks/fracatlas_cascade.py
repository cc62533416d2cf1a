"""FracAtlas detect → crop → classify against the whole-image classifier (issue #13, experiment 1).

Does localisation help fracture yes/no here, as the literature reports? One pipeline file holds both arms, so
they share the data, the split and the evaluation (``osteon pipeline evaluate``: image-level AUC with 95%
bootstrap CIs, sensitivity/specificity, error attribution by stage, the localiser's recall):

* ``whole_image``: ``classify`` on the whole radiograph (ResNet-18, ``--whole-size`` px, ``--whole-epochs``).
* ``cascade``: a detector (``--detector``: the YOLO backend by default, the strongest detector per CPU second in
  BENCHMARKS.md §4) proposes up to 3 boxes; each is cut out with a margin and classified by a crop classifier
  (ResNet-18 at ``--crop-size`` px) trained on crops around the TRUE boxes of fractured images and one random
  crop per non-fractured image; the image's probability is the maximum over its crops (0 with no box).
* ``detector_only``: the detector's highest box score as the image score (how much the classifier adds).

The split: FracAtlas has no patient ids and the authors' split covers only fractured images, so one seeded split
(grouped by duplicate content, stratified by ``fractured``, 70/15/15) is written into the Manifest and used by
every stage. Budget: the detector and the crop classifier together are given about the whole-image classifier's
training time (epochs chosen from a first measurement; the measured seconds are reported). DeLong's paired test
compares the arms' AUCs on the same test images.

    .venv/bin/python benchmarks/fracatlas_cascade.py --threads 1
"""

from __future__ import annotations

import argparse
import time
import warnings
from typing import Any

import pandas as pd
import yaml
from _common import (
    SHARED_DATA,
    ci,
    load_average,
    log,
    machine_info,
    new_out_dir,
    quiet_lightning,
    set_threads,
    write_summary,
)


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default=str(SHARED_DATA / "fracatlas"))
    p.add_argument("--whole-size", type=int, default=192)
    p.add_argument("--whole-epochs", type=int, default=8)
    p.add_argument("--detector", default="yolo", help="yolo | retinanet | faster_rcnn")
    p.add_argument("--detector-size", type=int, default=256)
    p.add_argument("--detector-epochs", type=int, default=8)
    p.add_argument("--crop-size", type=int, default=96)
    p.add_argument("--crop-epochs", type=int, default=10)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--n-resamples", type=int, default=1000)
    p.add_argument("--threads", type=int, default=0)
    p.add_argument("--out-root", default="runs")
    return p.parse_args()


def pipeline(args: argparse.Namespace) -> dict[str, Any]:
    detector: dict[str, Any] = {"task": "detect", "image_size": args.detector_size, "epochs": args.detector_epochs}
    detector |= {"batch_size": 8, "score_threshold": 0.001, "seed": args.seed}
    if args.detector == "yolo":
        detector["backend"] = "yolo"
    else:
        detector |= {"model": args.detector, "encoder": "resnet18"}
    classifier = {"task": "classify", "model": "resnet18", "batch_size": 32, "lr": 1e-3, "seed": args.seed}
    return {
        "name": "fracatlas-localise-then-classify",
        "runs": {"detector": "runs/detector", "crop_classifier": "runs/crop_classifier", "whole": "runs/whole"},
        "stages": [
            {"name": "detect", "run": "detector", "train": {"options": detector}},
            {
                "name": "classify",
                "run": "crop_classifier",
                "input": {"from": "detect", "crop": {"margin": 0.5, "min_size": 64, "min_score": 0.001, "top_k": 3}},
                "train": {
                    "crops_from": "truth",
                    "label": "fractured",
                    "options": classifier | {"image_size": args.crop_size, "epochs": args.crop_epochs},
                },
            },
            {
                "name": "whole",
                "run": "whole",
                "train": {
                    "options": classifier
                    | {"image_size": args.whole_size, "epochs": args.whole_epochs, "target": "fractured"}
                },
            },
        ],
        "findings": [
            {"name": "cascade", "stage": "classify", "class": "1", "truth": "fractured", "positive": "1"},
            {"name": "whole_image", "stage": "whole", "class": "1", "truth": "fractured", "positive": "1"},
            {"name": "detector_only", "stage": "detect", "truth": "fractured", "positive": "1"},
        ],
    }


def main() -> None:
    args = parse_args()
    set_threads(args.threads)
    quiet_lightning()
    out = new_out_dir("fracatlas_cascade", args.out_root)
    machine = machine_info()
    log(f"FracAtlas cascade benchmark → {out}; machine {machine}")
    from osteon.data.adapters import load_dataset
    from osteon.data.splits import make_splits
    from osteon.metrics.delong import delong_test
    from osteon.pipelines.evaluate import evaluate_result
    from osteon.pipelines.runner import Pipeline
    from osteon.pipelines.train import train_pipeline

    manifest = load_dataset(args.data)
    manifest.frame["fractured"] = manifest.frame["fractured"].astype(int).astype(str)
    manifest.frame["split"] = make_splits(manifest, stratify="fractured", seed=args.seed)
    manifest.save(out / "manifest.csv")
    (out / "pipeline.yaml").write_text(yaml.safe_dump(pipeline(args), sort_keys=False))
    load_before = load_average()
    seconds: dict[str, float] = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for stage in ("detect", "classify", "whole"):
            started = time.perf_counter()
            train_pipeline(out / "pipeline.yaml", out / "manifest.csv", stages=[stage], progress=False)
            seconds[stage] = round(time.perf_counter() - started, 1)
            log(f"stage {stage}: {seconds[stage]:.0f} s (load {load_average()})")
        test = load_dataset(str(out / "manifest.csv")).split("test")
        result = Pipeline.from_file(out / "pipeline.yaml").run(test)
        scores = evaluate_result(result, n_resamples=args.n_resamples)
    keys = ("n", "auc", "sensitivity", "specificity")
    table = {name: {k: entry["image"][k] for k in keys} for name, entry in scores.items()}
    extra = {name: {"attribution": e["attribution"], "localiser": e["localiser"]} for name, e in scores.items()}
    scores_by_arm = result.findings.pivot(index="row", columns="finding", values="probability").astype(float)
    scores_by_arm = scores_by_arm.fillna(0.0)  # no box → the stage's empty score (0)
    y = test.frame["fractured"].astype(int).to_numpy()[scores_by_arm.index.to_numpy()]
    paired: dict[str, Any] = {}
    for a, b in (("cascade", "whole_image"), ("detector_only", "whole_image"), ("cascade", "detector_only")):
        auc_a, auc_b, z, p = delong_test(y, scores_by_arm[a].to_numpy(), scores_by_arm[b].to_numpy())
        paired[f"{a} vs {b}"] = {"auc_a": auc_a, "auc_b": auc_b, "z": z, "p": p}
    lines = ["| arm | train s | AUC (95% CI) | sensitivity | specificity |", "|---|---|---|---|---|"]
    train_s = {"cascade": seconds["detect"] + seconds["classify"], "whole_image": seconds["whole"]}
    train_s["detector_only"] = seconds["detect"]
    for name, row in table.items():
        lines.append(
            f"| {name} | {train_s.get(name, 0):.0f} | {ci(row['auc'])} | {ci(row['sensitivity'])} | "
            f"{ci(row['specificity'])} |"
        )
    lines += [f"DeLong {k}: {v['auc_a']:.3f} vs {v['auc_b']:.3f}, p = {v['p']:.3g}" for k, v in paired.items()]
    markdown = "\n".join(lines)
    summary = {
        "benchmark": "fracatlas_cascade",
        "out": str(out),
        "machine": machine,
        "recipe": {k: v for k, v in vars(args).items() if k != "out_root"},
        "split_counts": pd.crosstab(manifest.frame["split"], manifest.frame["fractured"]).to_dict(),
        "load_before": load_before,
        "load_after": load_average(),
        "train_seconds": seconds,
        "test": table,
        "stages": extra,
        "paired_delong": paired,
        "markdown": markdown,
    }
    write_summary(out, summary)
    print("\n" + markdown, flush=True)


if __name__ == "__main__":
    main()
