"""End-to-end CPU inference: files on disk → predictions, eager PyTorch loop vs Osteon torch / ONNX fp32 / int8.

All four variants read the same image files with the same decoder and preprocessing
(:func:`osteon.data.transforms.load_unit_image`: decode, grayscale, letterbox, normalise) and end with the
class probabilities of every image:

* **eager**: the loop a PyTorch user writes: decode a batch of files one after the other, then run the model
  (``torch.inference_mode``) on the batch; no overlap of decoding and inference.
* **osteon torch**: ``Predictor.from_run(RUN).predict_paths(...)``: chunks decoded by a thread pool in a
  background thread while the model runs on the previous chunk.
* **osteon onnx** / **onnx int8**: the same with ``backend="onnx"`` / ``"onnx-int8"`` (ONNX Runtime).

Variants run interleaved in each repetition (so a change of load on the shared machine hits all of them) and
the median images/s is reported. The run is exported first when ``RUN/export/`` is missing
(``osteon export RUN --quantize int8``); the AUC change of int8 on the run's validation split comes from the
export report (the same number ``osteon export`` prints) and is recomputed here from the predicted tables.

Usage::

    .venv/bin/python benchmarks/inference_speed.py --run runs/bench-onnx-fracatlas --threads 2 --reps 3
"""

from __future__ import annotations

import argparse
import statistics
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from _common import load_average, log, machine_info, new_out_dir, set_threads, write_summary

VARIANTS = ("eager", "osteon torch", "osteon onnx", "osteon onnx int8")


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--run", required=True, help="A trained classify run (ResNet-18, 224 px) on FracAtlas")
    p.add_argument("--images", type=int, default=0, help="Images to time (0: every val + test image of the run)")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--reps", type=int, default=3)
    p.add_argument("--threads", type=int, default=2, help="torch and ONNX Runtime intra-op threads")
    p.add_argument("--out-root", default="runs")
    return p.parse_args()


def eager(run: Path, paths: list[Path], batch_size: int) -> pd.DataFrame:
    """The plain loop: sequential decode + preprocessing per batch, then one forward pass per batch."""
    import torch

    from osteon.data.transforms import load_unit_image, normalize
    from osteon.engine.checkpoint import load_model_file
    from osteon.models import create_model

    payload = load_model_file(run / "model.pt")
    meta = payload["meta"]
    prep_meta = meta["preprocessing"]
    from osteon.data.transforms import Preprocessing

    prep = Preprocessing(**prep_meta)
    names = meta["task"]["class_names"]
    model = create_model(meta["config"]["model"], len(names), in_chans=1, covariate_dim=0, pretrained=None)
    model.load_state_dict(payload["state_dict"])
    model.eval()
    rows = []
    with torch.inference_mode():
        for start in range(0, len(paths), batch_size):
            batch = paths[start : start + batch_size]
            x = torch.stack([torch.from_numpy(load_unit_image(p, prep)[0])[None] for p in batch])
            probs = torch.softmax(model(normalize(x, prep)), dim=1).numpy()
            rows += [
                {"image": str(p), **{f"prob_{n}": float(v) for n, v in zip(names, pr, strict=True)}}
                for p, pr in zip(batch, probs, strict=True)
            ]
    return pd.DataFrame(rows)


def osteon_variant(run: Path, paths: list[Path], batch_size: int, backend: str) -> pd.DataFrame:
    from osteon.engine import Predictor

    predictor = Predictor.from_run(run, backend=backend)
    return predictor.predict_paths(paths, batch_size=batch_size, progress=False)


def auc(table: pd.DataFrame, truth: pd.Series, positive: str) -> float:
    from sklearn.metrics import roc_auc_score

    joined = table.assign(key=table["image"].map(lambda p: str(Path(p).resolve()))).set_index("key")
    y = truth.reindex(joined.index)
    return float(roc_auc_score((y == positive).astype(int), joined[f"prob_{positive}"]))


def main() -> None:
    args = parse_args()
    threads = set_threads(args.threads)
    out = new_out_dir("inference_speed", args.out_root)
    run = Path(args.run)
    from osteon.engine import RunDir
    from osteon.engine.export_onnx import export_onnx

    rundir = RunDir.open(run)
    export: dict[str, Any]
    if not rundir.onnx_int8_model.is_file():
        log("exporting (fp32 + int8; accepted here whatever the change, the table reports it)")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            export = export_onnx(run, quantize="int8", max_metric_drop=1.0).info
    else:
        export = rundir.read_json(rundir.onnx_info)
    manifest = rundir.load_manifest()
    frame = manifest.frame
    chosen = frame[frame["split"].isin(["val", "test"])]
    paths = [manifest.resolve(p) for p in chosen["image"]]
    if args.images:
        paths = paths[: args.images]
    val = frame[frame["split"] == "val"]
    state = rundir.read_json(rundir.state)["task"]
    positive, target = state["positive_class"], state["target"]
    truth = pd.Series(
        val[target].astype(str).to_numpy(), index=[str(manifest.resolve(p).resolve()) for p in val["image"]]
    )
    val_paths = [manifest.resolve(p) for p in val["image"]]
    log(f"{len(paths)} images, threads {threads}, batch {args.batch_size}, reps {args.reps}")
    timings: dict[str, list[float]] = {v: [] for v in VARIANTS}
    for rep in range(args.reps):
        for variant in VARIANTS:
            start = time.perf_counter()
            if variant == "eager":
                table = eager(run, paths, args.batch_size)
            else:
                backend = {"osteon torch": "torch", "osteon onnx": "onnx", "osteon onnx int8": "onnx-int8"}[variant]
                table = osteon_variant(run, paths, args.batch_size, backend)
            seconds = time.perf_counter() - start
            assert len(table) == len(paths)
            timings[variant].append(len(paths) / seconds)
            log(f"rep {rep} {variant}: {len(paths) / seconds:.1f} images/s")
    aucs = {}
    for variant in VARIANTS:
        if variant == "eager":
            table = eager(run, val_paths, args.batch_size)
        else:
            backend = {"osteon torch": "torch", "osteon onnx": "onnx", "osteon onnx int8": "onnx-int8"}[variant]
            table = osteon_variant(run, val_paths, args.batch_size, backend)
        aucs[variant] = auc(table, truth, positive)
    median = {v: statistics.median(t) for v, t in timings.items()}
    rows = [
        {
            "variant": v,
            "images_per_s": round(median[v], 1),
            "all_reps": [round(t, 1) for t in timings[v]],
            "speed_vs_eager": round(median[v] / median["eager"], 2),
            "val_auc": round(aucs[v], 4),
            "val_auc_change_vs_torch": round(aucs[v] - aucs["osteon torch"], 4),
        }
        for v in VARIANTS
    ]
    summary = {
        "machine": machine_info(),
        "load_after": load_average(),
        "run": str(run),
        "images": len(paths),
        "val_images": len(val_paths),
        "threads": threads,
        "batch_size": args.batch_size,
        "reps": args.reps,
        "results": rows,
        "export": {k: export.get(k) for k in ("parity", "validation", "int8", "exporter", "opset")},
    }
    write_summary(out, summary)
    print("\n| variant | images/s (median) | × eager | val AUC | AUC change vs torch |\n|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['variant']} | {r['images_per_s']} | {r['speed_vs_eager']} | {r['val_auc']:.4f} | "
            f"{r['val_auc_change_vs_torch']:+.4f} |"
        )
    print(np.round([median[v] for v in VARIANTS], 1))


if __name__ == "__main__":
    main()
