"""Osteon's default segment recipe vs a plain hand-written smp U-Net loop, equal wall-clock budget, two protocols.

Per dataset, two models, each with ``--budget-min`` minutes of training:

* **osteon**: ``osteon.engine.train(task="segment", ...)`` with nothing but ``image_size`` and ``threads`` set
  (what ``osteon train --task segment --image-size S --threads 1`` does); the number of epochs is sized to the
  budget from a measured throughput probe (a few training steps of the default model on random input).
* **hand**: ``benchmarks/_hand_unet.py``: smp ``Unet("resnet18")``, Dice+BCE, AdamW + OneCycleLR, flips, whole
  images stretched to S×S, batch 8, one-cycle planned over the steps the budget allows, best epoch by val Dice.

Datasets: ``fracatlas`` (fracture polygons, the authors' split of the fractured images; the non-fractured
images are unsplit and only scored as negatives: false-positive rate = any predicted pixel), ``aponeurosis`` and
``fascicle`` (DL_Track ultrasound masks, split by image 70/15/15 with a fixed seed; the 4 pictures present in
both structures get the same split; no patient ids are published, so intervals resample images).

Protocols (every row): (i) **original** pixels: each prediction mapped back to the image's own size (Osteon:
inverted letterbox; hand: bilinear upsampling of the probabilities), truth rasterised at full size; (ii)
**resized** 256-px grid: truth resized to S×S with nearest neighbour, Osteon's original-pixel mask resized the
same way, the hand loop's own output. Empty-mask policy: both masks empty → Dice/IoU 1; exactly one empty → 0.
Dice is the mean over images with a 95% percentile bootstrap CI over images (1000 resamples). DL_Track rows also
give the measurement each mask implies (:mod:`osteon.metrics.mask_measurements`, original pixels): aponeurosis
mean thickness (area / occupied columns, px) and fascicle angle of the largest component (degrees to the image
horizontal), as the MAE between prediction and truth with a CI.

Usage::

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/segmentation_recipes.py --budget-min 8 --threads 1
    .venv/bin/python benchmarks/segmentation_recipes.py --smoke --only aponeurosis
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
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
    utc_now,
    write_summary,
)

DATASETS = ("aponeurosis", "fascicle", "fracatlas")
MEASURE = {"aponeurosis": "thickness_px", "fascicle": "angle_deg"}


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--only", default=",".join(DATASETS), help="comma list of " + ", ".join(DATASETS))
    p.add_argument("--budget-min", type=float, default=8.0, help="wall-clock training minutes per model")
    p.add_argument("--image-size", type=int, default=256)
    p.add_argument("--patch-size", type=int, default=0, help="Osteon only; 0: the default (whole images)")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--n-resamples", type=int, default=1000)
    p.add_argument("--smoke", action="store_true", help="tiny budget and data subsets, for a quick check")
    p.add_argument("--out-root", default="runs")
    args = p.parse_args()
    if args.smoke:
        args.budget_min, args.n_resamples = 0.4, 100
    return args


# -- data -----------------------------------------------------------------------------------------------------
@dataclass
class Data:
    """One dataset: paths and splits, how to read the truth, and what Osteon trains on."""

    name: str
    frame: pd.DataFrame  # image (absolute path), split (train/val/test/negative), key
    truth: Any  # row → (H, W) bool in original pixels
    mode: str  # PIL mode of the hand loop's input: "L" or "RGB"
    osteon_data: str
    split_file: Path
    extra: dict[str, Any] = field(default_factory=dict)


def fracatlas(out: Path, smoke: bool) -> Data:
    from osteon.data.adapters import load_dataset
    from osteon.data.masks import rasterize_polygons

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        manifest = load_dataset(SHARED_DATA / "fracatlas")
    f = manifest.frame
    split = f["split"].astype("string").fillna("")
    split[(split == "") & (f["fractured"] == 0) & (f["polygons"] == "[]")] = "negative"
    frame = pd.DataFrame(
        {"image": [str(manifest.resolve(p)) for p in f["image"]], "split": split.to_numpy(), "key": f["image"]}
    )
    frame["polygons"] = f["polygons"].astype("string").to_numpy()
    if smoke:
        frame = _smoke_subset(frame)
    split_file = out / "fracatlas_split.csv"
    pd.DataFrame({"image": f["image"], "split": f["split"]}).pipe(
        lambda s: s[s["image"].isin(frame["key"])] if smoke else s
    ).to_csv(split_file, index=False)

    def truth(row: pd.Series) -> np.ndarray:
        from PIL import Image

        with Image.open(row["image"]) as im:
            w, h = im.size
        polygons = json.loads(row["polygons"]) if isinstance(row["polygons"], str) else []
        index = {str(p.get("label", "")): 1 for p in polygons}
        return rasterize_polygons(polygons, (h, w), index).astype(bool) if polygons else np.zeros((h, w), bool)

    data = str(SHARED_DATA / "fracatlas")
    if smoke:  # a Manifest of the subset, so that Osteon decodes only those images
        data = str(_subset_manifest(manifest, frame["key"], out / "fracatlas_smoke.csv"))
    return Data("fracatlas", frame, truth, "L", data, split_file)


def dltrack(structure: str, out: Path, seed: int, smoke: bool) -> Data:
    """70/15/15 by image with a fixed seed; fascicle duplicates of aponeurosis pictures follow their split."""
    from PIL import Image

    root = (SHARED_DATA / "muscle_us_dltrack").resolve()
    index = pd.read_csv(root / "index.csv")
    splits = {}
    for name in ("aponeurosis", "fascicle"):
        part = index[index["structure"] == name].sort_values("image")
        order = np.random.default_rng(seed).permutation(len(part))
        n_train, n_val = round(0.70 * len(part)), round(0.15 * len(part))
        labels = np.where(order < n_train, "train", np.where(order < n_train + n_val, "val", "test"))
        splits[name] = dict(zip(part["image"].map(lambda p: Path(p).stem), labels, strict=True))
    for apo, fasc in DUPLICATES.items():  # one picture, two structures: one split
        splits["fascicle"][fasc] = splits["aponeurosis"][apo]
    part = index[index["structure"] == structure].sort_values("image")
    stems = part["image"].map(lambda p: Path(p).stem)
    frame = pd.DataFrame(
        {
            "image": [str(root / p) for p in part["image"]],
            "mask": [str(root / p) for p in part["mask"]],
            "split": [splits[structure][s] for s in stems],
            "key": stems.to_numpy(),
        }
    )
    if smoke:
        frame = _smoke_subset(frame)
    manifest = out / f"{structure}.csv"
    frame[["image", "mask"]].to_csv(manifest, index=False)
    split_file = out / f"{structure}_split.csv"
    frame[["image", "split"]].to_csv(split_file, index=False)

    def truth(row: pd.Series) -> np.ndarray:
        with Image.open(row["mask"]) as im:
            return np.asarray(im.convert("L")) > 127

    counts = frame["split"].value_counts().to_dict()
    return Data(structure, frame, truth, "RGB", str(manifest), split_file, {"split_counts": counts})


#: aponeurosis picture → the same picture in the fascicle set (PROVENANCE.md)
DUPLICATES = {"img_00016": "img_00202", "img_00049": "img_00008", "img_00106": "img_00034", "img_00115": "img_00040"}


def _smoke_subset(frame: pd.DataFrame) -> pd.DataFrame:
    keep = {"train": 16, "val": 6, "test": 6, "negative": 6}
    return pd.concat([frame[frame["split"] == s].head(n) for s, n in keep.items()], ignore_index=True)


def _subset_manifest(manifest: Any, keys: pd.Series, path: Path) -> Path:
    from osteon.data.manifest import Manifest

    sub = manifest.frame[manifest.frame["image"].isin(set(keys))].copy()
    sub["image"] = [str(manifest.resolve(p)) for p in sub["image"]]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        Manifest(sub.drop(columns=["split"]), root=path.parent, name="fracatlas_smoke").save(path)
    saved = pd.read_csv(path)  # image paths as the saved Manifest spells them
    pd.DataFrame({"image": saved["image"], "split": sub["split"].to_numpy()}).to_csv(
        path.parent / "fracatlas_split.csv", index=False
    )
    return path


def read_resized(paths: list[str], mode: str, size: int) -> np.ndarray:
    """uint8 ``(N, C, S, S)``: every image converted to ``mode`` and stretched to S×S (bilinear)."""
    from PIL import Image

    out = []
    for p in paths:
        with Image.open(p) as im:
            a = np.asarray(im.convert(mode).resize((size, size), Image.BILINEAR))
        out.append(a[None] if a.ndim == 2 else a.transpose(2, 0, 1))
    return np.stack(out)


def resize_mask(mask: np.ndarray, size: int) -> np.ndarray:
    from PIL import Image

    return np.asarray(Image.fromarray(mask.astype(np.uint8) * 255).resize((size, size), Image.NEAREST)) > 127


# -- scoring --------------------------------------------------------------------------------------------------
def dice_iou(truth: np.ndarray, pred: np.ndarray) -> tuple[float, float]:
    """Both empty → 1, 1; one empty → 0, 0."""
    t, p = truth.astype(bool), pred.astype(bool)
    inter, total = int((t & p).sum()), int(t.sum() + p.sum())
    if total == 0:
        return 1.0, 1.0
    return 2 * inter / total, inter / (total - inter)


def measurement(name: str, mask: np.ndarray) -> float:
    from osteon.metrics.mask_measurements import mean_thickness, orientation_deg

    return mean_thickness(mask) if name == "aponeurosis" else orientation_deg(mask)


def mean_ci(values: np.ndarray, n_resamples: int, seed: int) -> dict[str, Any]:
    from osteon.metrics import bootstrap_ci

    values = np.asarray(values, float)
    values = values[np.isfinite(values)]
    if len(values) == 0:
        return {"estimate": None, "n": 0}
    interval = bootstrap_ci(lambda v: float(np.mean(v)), values, n_resamples=n_resamples, seed=seed)
    return {"estimate": float(np.mean(values)), "low": interval.low, "high": interval.high, "n": len(values)}


def score(data: Data, preds: list[dict[str, np.ndarray]], truths: list[np.ndarray], args: argparse.Namespace):
    """Per-image table and the summary of both protocols (and the measurement MAE on DL_Track)."""
    s = args.image_size
    rows = []
    for pred, truth in zip(preds, truths, strict=True):
        d_o, i_o = dice_iou(truth, pred["original"])
        d_r, i_r = dice_iou(resize_mask(truth, s), pred["resized"])
        row = {"dice_original": d_o, "iou_original": i_o, "dice_resized": d_r, "iou_resized": i_r}
        if data.name in MEASURE:
            true_m, pred_m = measurement(data.name, truth), measurement(data.name, pred["original"])
            row |= {"true_measure": true_m, "pred_measure": pred_m}
        rows.append(row)
    table = pd.DataFrame(rows)
    out: dict[str, Any] = {"n_images": len(table)}
    for protocol in ("original", "resized"):
        out[protocol] = {k: mean_ci(table[f"{k}_{protocol}"], args.n_resamples, args.seed) for k in ("dice", "iou")}
    if data.name in MEASURE:
        from osteon.metrics.mask_measurements import angle_difference

        t, p = table["true_measure"].to_numpy(float), table["pred_measure"].to_numpy(float)
        err = angle_difference(p, t) if data.name == "fascicle" else np.abs(p - t)
        err = np.asarray(err, float)
        out["measurement"] = {
            "name": MEASURE[data.name],
            "mae": mean_ci(err, args.n_resamples, args.seed),
            "n_undefined": int((~np.isfinite(err)).sum()),
            "true_mean": float(np.nanmean(t)),
        }
    return table, out


def negatives_fp(preds: list[dict[str, np.ndarray]], args: argparse.Namespace) -> dict[str, Any]:
    return mean_ci(np.array([float(p["original"].any()) for p in preds]), args.n_resamples, args.seed)


# -- the two arms ----------------------------------------------------------------------------------------------
def osteon_arm(data: Data, out: Path, budget_s: float, args: argparse.Namespace) -> dict[str, Any]:
    from _progress import EpochLog

    from osteon.engine import Predictor, train

    train_n = int((data.frame["split"] == "train").sum())
    val_n = int((data.frame["split"] == "val").sum())
    per_image, val_per_image, batch = osteon_probe(data, args)
    epoch_s = per_image * train_n * 1.1 + val_per_image * val_n
    epochs = max(1, round(budget_s / epoch_s))
    log(f"{data.name} osteon: probe {per_image:.3f} s/train image (batch {batch}) → {epochs} epochs")
    epoch_log = EpochLog(f"{data.name} osteon")
    options: dict[str, Any] = {"image_size": args.image_size, "threads": args.threads}
    if args.patch_size:
        options["patch_size"] = args.patch_size
    with Stopwatch() as sw, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        run = train(
            task="segment",
            data=data.osteon_data,
            split_file=str(data.split_file),
            out=str(out / f"{data.name}_osteon"),
            epochs=epochs,
            seed=args.seed,
            callbacks=[epoch_log],
            progress=False,
            **options,
        )
    log(f"{data.name} osteon trained in {sw.seconds:.0f} s")
    predictor = Predictor.from_run(run.path)
    training = run.read_json(run.path / "training.json")

    def predict(paths: list[str]) -> list[dict[str, np.ndarray]]:
        preds = []
        for p in paths:
            mask = predictor.predict_image(p).channels()[0]
            preds.append({"original": mask, "resized": resize_mask(mask, args.image_size)})
        return preds

    from osteon.engine.config import TrainConfig

    config = TrainConfig.load(run.config).model_dump()
    state = run.read_json(run.state)["task"]["extra"]
    return {
        "predict": predict,
        "train_seconds": sw.seconds,
        "epochs": epochs,
        "epochs_done": len(epoch_log.epochs),
        "best_epoch": int(training.get("best_epoch", -2)) + 1,
        "steps": len(epoch_log.epochs) * math.ceil(train_n / batch),
        "probe_s_per_image": per_image,
        "batch_size": batch,
        "history": epoch_log.epochs,
        "run": str(run.path),
        "config": {k: config.get(k) for k in RECORDED_OPTIONS} | {k: state.get(k) for k in ("encoder", "patch_size")},
    }


RECORDED_OPTIONS = (
    "model",
    "batch_size",
    "precision",
    "lr",
    "patch_size",
    "loss",
    "augment",
    "rotate_degrees",
    "hflip",
)


def osteon_probe(data: Data, args: argparse.Namespace) -> tuple[float, float, int]:
    """Seconds per training image and per validation image of the default segment model, random input."""
    import torch

    from osteon.engine.config import TrainConfig
    from osteon.engine.fit import with_recipe_defaults
    from osteon.models.segmentation import create_segmentation_model

    cfg = with_recipe_defaults(TrainConfig(task="segment", data="."))  # what `osteon train --task segment` uses
    batch = cfg.batch_size
    channels = 3 if data.mode == "RGB" else 1
    side = args.patch_size or args.image_size
    net = create_segmentation_model("unet", 1, encoder="resnet18", in_chans=channels)
    opt = torch.optim.AdamW(net.parameters(), lr=1e-4)
    x = torch.randn(batch, channels, side, side)
    y = (torch.rand(batch, 1, side, side) > 0.9).float()
    bf16 = cfg.precision == "bf16-mixed"  # the default's precision (bf16 autocast on CPUs with native bf16)
    times = []
    for step in range(4):
        start = time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            logits = net(x)
        loss = torch.nn.functional.binary_cross_entropy_with_logits(logits.float(), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step:
            times.append(time.perf_counter() - start)
    net.eval()
    with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        start = time.perf_counter()
        net(torch.randn(batch, channels, args.image_size, args.image_size))
        val = (time.perf_counter() - start) / batch
    return float(np.median(times)) / batch, val, batch


def hand_arm(data: Data, budget_s: float, args: argparse.Namespace) -> dict[str, Any]:
    import torch
    from _hand_unet import predict_probabilities, train_hand_unet

    s = args.image_size
    parts = {}
    for split in ("train", "val"):
        rows = data.frame[data.frame["split"] == split]
        images = read_resized(list(rows["image"]), data.mode, s)
        masks = np.stack([resize_mask(data.truth(r), s) for _, r in rows.iterrows()]).astype(np.uint8)
        parts[split] = (images, masks)
    result = train_hand_unet(*parts["train"], *parts["val"], budget_s=budget_s, seed=args.seed, log=log)
    log(f"{data.name} hand trained in {result.train_seconds:.0f} s, {result.steps} steps")

    def predict(paths: list[str]) -> list[dict[str, np.ndarray]]:
        from PIL import Image

        preds = []
        for p in paths:
            prob = predict_probabilities(result.model, read_resized([p], data.mode, s))[0]
            with Image.open(p) as im:
                w, h = im.size
            up = torch.nn.functional.interpolate(
                torch.from_numpy(prob)[None, None], size=(h, w), mode="bilinear", align_corners=False
            )[0, 0].numpy()
            preds.append({"original": up > 0.5, "resized": prob > 0.5})
        return preds

    return {
        "predict": predict,
        "train_seconds": result.train_seconds,
        "epochs": result.epochs,
        "epochs_done": result.epochs,
        "best_epoch": result.best_epoch + 1,
        "steps": result.steps,
        "planned_steps": result.planned_steps,
        "probe_s_per_step": result.seconds_per_step_probe,
        "batch_size": 8,
        "history": result.history,
    }


# -- main -----------------------------------------------------------------------------------------------------
def run_dataset(data: Data, out: Path, args: argparse.Namespace) -> dict[str, Any]:
    budget_s = args.budget_min * 60
    test = data.frame[data.frame["split"] == "test"]
    negatives = data.frame[data.frame["split"] == "negative"]
    truths = [data.truth(r) for _, r in test.iterrows()]
    result: dict[str, Any] = {"n_test": len(test), "n_negatives": len(negatives), **data.extra, "models": {}}
    for model, arm in (("osteon", osteon_arm), ("hand", hand_arm)):
        load_before, started = load_average(), utc_now()
        info = arm(data, out, budget_s, args) if model == "osteon" else arm(data, budget_s, args)
        predict = info.pop("predict")
        with Stopwatch() as sw:
            preds = predict(list(test["image"]))
            table, scores = score(data, preds, truths, args)
            table.insert(0, "image", test["key"].to_numpy())
            table.to_csv(out / f"{data.name}_{model}_test.csv", index=False)
            if len(negatives):
                scores["negatives_false_positive_rate"] = negatives_fp(predict(list(negatives["image"])), args)
        info |= {"eval_seconds": sw.seconds, "load_before": load_before, "load_after": load_average()}
        info |= {"started_utc": started, "budget_s": budget_s}
        result["models"][model] = {**info, **scores}
        log(f"{data.name} {model}: {json.dumps(scores, default=str)[:600]}")
    return result


def markdown(results: dict[str, Any]) -> str:
    lines = [
        "| dataset | model | protocol | Dice (95% CI) | IoU | measurement MAE | FP rate (negatives) | budget s "
        "| epochs (steps) | train s | load before → after |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, r in results.items():
        for model, m in r["models"].items():
            for protocol in ("original", "resized"):
                meas = m.get("measurement")
                mae = f"{meas['name']} {ci(meas['mae'], 2)}" if meas and protocol == "original" else ""
                fp = ci(m.get("negatives_false_positive_rate")) if protocol == "original" else ""
                steps = f" ({m['steps']})" if m.get("steps") else ""
                lines.append(
                    f"| {name} (test {r['n_test']}) | {model} | {protocol} | {ci(m[protocol]['dice'])} | "
                    f"{ci(m[protocol]['iou'])} | {mae} | {fp} | {m['budget_s']:.0f} | {m['epochs_done']}{steps} | "
                    f"{m['train_seconds']:.0f} | {m['load_before']} → {m['load_after']} |"
                )
    return "\n".join(lines)


def main() -> None:
    args = parse_args()
    threads = set_threads(args.threads)
    quiet_lightning()
    out = new_out_dir("segmentation_recipes", args.out_root)
    machine = machine_info()
    log(f"segmentation recipes → {out}; torch threads {threads}; budget {args.budget_min} min per model")
    names = [n.strip() for n in args.only.split(",") if n.strip()]
    unknown = set(names) - set(DATASETS)
    if unknown:
        raise SystemExit(f"--only: unknown dataset(s) {sorted(unknown)}; choose from {', '.join(DATASETS)}")
    summary: dict[str, Any] = {
        "benchmark": "segmentation_recipes",
        "command": " ".join(sys.argv),
        "out": str(out),
        "machine": machine,
        "args": vars(args),
        "empty_mask_policy": "both masks empty: Dice = IoU = 1; exactly one empty: 0",
        "protocols": {
            "original": "prediction mapped back to the image's own pixels; truth rasterised at full size",
            "resized": f"{args.image_size}x{args.image_size} grid; truth and Osteon's mask resized with nearest",
        },
        "splits": "fracatlas: authors' split (fractured only), non-fractured = negatives; DL_Track: by image "
        f"70/15/15 seed {args.seed}, duplicate pictures in one split, no patient ids published",
        "measurements": "aponeurosis: mean thickness = area / occupied columns (px); fascicle: angle of the "
        "largest component's major axis to the image horizontal (deg, difference modulo 180)",
        "results": {},
    }
    for name in names:
        data = fracatlas(out, args.smoke) if name == "fracatlas" else dltrack(name, out, args.seed, args.smoke)
        log(f"{name}: {data.frame['split'].value_counts().to_dict()}")
        summary["results"][name] = run_dataset(data, out, args)
        summary["markdown"] = markdown(summary["results"])
        (out / "summary.json").write_text(json.dumps(summary, indent=2, default=_json))
    summary["finished_utc"] = utc_now()
    write_summary(out, json.loads(json.dumps(summary, default=_json)))
    print("\n" + summary["markdown"], flush=True)


def _json(value: Any) -> Any:
    if isinstance(value, float | np.floating) and not math.isfinite(float(value)):
        return None
    if isinstance(value, np.generic):
        return value.item()
    return str(value)


if __name__ == "__main__":
    main()
