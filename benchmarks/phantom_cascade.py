"""Detect → crop → classify on the knee phantoms against the whole-image classifier and the detector alone.

A small, CPU-sized rehearsal of issue #13's experiment 1 (FracAtlas): the same phantom split for all three; the
cascade's crop classifier is trained on crops around the TRUE boxes (plus one random crop per normal image), the
detector is the `make demo` Faster R-CNN recipe. Reports test AUC / sensitivity / specificity, the error
attribution and the localiser's recall.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/phantom_cascade.py --out runs/bench_phantom_cascade
"""

from __future__ import annotations

import argparse
import json
import time
import warnings
from pathlib import Path

import yaml

PIPELINE = {
    "name": "phantom-fracture",
    "runs": {"detector": "runs/det", "crop_classifier": "runs/crop_cls", "whole": "runs/whole"},
    "stages": [
        {
            "name": "detect",
            "run": "detector",
            "train": {
                "options": {"task": "detect", "model": "faster_rcnn", "encoder": "resnet18", "image_size": 96}
                | {"epochs": 4, "batch_size": 4, "lr": 0.001, "score_threshold": 0.01}
            },
        },
        {
            "name": "classify",
            "run": "crop_classifier",
            "input": {"from": "detect", "crop": {"margin": 0.25, "min_size": 24, "min_score": 0.05, "top_k": 3}},
            "train": {
                "crops_from": "truth",
                "label": "label",
                "options": {"task": "classify", "model": "tiny_cnn", "image_size": 32, "epochs": 4}
                | {"batch_size": 16, "lr": 0.003},
            },
        },
        {
            "name": "whole",
            "run": "whole",
            "train": {
                "options": {"task": "classify", "model": "tiny_cnn", "image_size": 64, "epochs": 4, "batch_size": 16}
                | {"lr": 0.003, "target": "label"}
            },
        },
    ],
    "findings": [
        {"name": "cascade", "stage": "classify", "class": "fractured", "truth": "label", "positive": "fractured"},
        {"name": "whole_image", "stage": "whole", "class": "fractured", "truth": "label", "positive": "fractured"},
        {"name": "detector_only", "stage": "detect", "truth": "label", "positive": "fractured"},
    ],
}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--images", type=int, default=112)
    parser.add_argument("--out", default="runs/bench_phantom_cascade")
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    import torch

    from osteon.data.phantom import make_phantom_dataset
    from osteon.pipelines.evaluate import evaluate_result
    from osteon.pipelines.runner import Pipeline
    from osteon.pipelines.train import train_pipeline

    torch.set_num_threads(1)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "cascade.yaml").write_text(yaml.safe_dump(PIPELINE, sort_keys=False))
    manifest = make_phantom_dataset(out / "data", images=args.images, size=96, seed=0, overwrite=True)
    started = time.perf_counter()
    train_pipeline(out / "cascade.yaml", out / "data" / "manifest.csv", progress=False)
    trained = time.perf_counter() - started
    result = Pipeline.from_file(out / "cascade.yaml").run(manifest.split("test"))
    scores = evaluate_result(result, n_resamples=1000)
    summary = {"train_s": round(trained, 1)}
    for name, entry in scores.items():
        image = entry["image"]
        summary[name] = {k: image[k] for k in ("n", "auc", "sensitivity", "specificity")}
        summary[name] |= {"attribution": entry["attribution"], "localiser": entry["localiser"]}
    print(json.dumps(summary, indent=1, default=float))
    (out / "results.json").write_text(json.dumps(summary, indent=1, default=float))


if __name__ == "__main__":
    main()
