"""FracAtlas fracture detection: Osteon's default detector vs Ultralytics' nano models, same wall-clock budget.

Every model trains on the authors' fracture split as present in the shared subset (train 481 / val 73 /
test 54 fractured images; the 366 non-fractured images have no split there and are not trained on), at the
same input size, and is scored by Osteon's evaluation (pycocotools mAP@0.5 and @0.5:0.95, FROC, bootstrap
CIs). Budget: for each ``--budget-min``, all models train at the same time, one process and one torch thread
each (so they share the CPU alike), for the same wall-clock time: Osteon with ``time_budget_min`` (epochs
re-planned after each one), Ultralytics with its own recipe and its ``time`` argument. The image-level AUC
needs negatives, so each model is also evaluated on the 54 test fractures + the 366 held-out non-fractured
images.

The script's defaults for Osteon (512 px, batch 8, no ``--lr``/``--model``/``--encoder``) are the detect
task's recipe defaults, so Osteon trains as ``osteon train --task detect --time-budget-min B`` does with no
tuning flags; the rivals get the same input size (or ``--yolo-image-size``) and batch.

Also measured: inference images/s at the training size (end to end, files → boxes) and video frames/s
on a synthetic clip of phantom frames (PyAV), for every model.

Usage::

    .venv/bin/python benchmarks/fracatlas_detection.py --budget-min 10 30 --image-size 512 --threads 1
    .venv/bin/python benchmarks/fracatlas_detection.py --budget-min 30 --yolo yolov8n   # one budget, one rival
    .venv/bin/python benchmarks/fracatlas_detection.py --budget-min 10 --seeds 0 1 2    # + mean ± SD over seeds
    .venv/bin/python benchmarks/fracatlas_detection.py --summarise RUN RUN ...          # runs made separately
    .venv/bin/python benchmarks/fracatlas_detection.py --trend SEEDS SEEDS ...         # across-seed folders → plot
    .venv/bin/python benchmarks/fracatlas_detection.py --budget-min 30 --evaluate-trained RUN  # evaluate again

One run on 54 test images cannot rank these detectors (their mAP moves between seeds as much as they differ);
``--seeds`` repeats each budget and writes a table of mean ± SD (min–max) across the seeds, with Osteon's ratio
to the strongest rival per seed and of the seed means, each with a 95 % interval over resamples of the test
images shared by every model (``_detection_ratio.py``); with more than one
budget it also draws every seed's score and Osteon's ratio to the strongest rival against the budget
(``trend.png``), which ``--trend`` draws again from across-seed folders made separately, with every seed against
the epochs Osteon trained as well (``compute.png``: the VM's speed varies between days, so a budget in minutes is
not the same compute on each).
"""

from __future__ import annotations

import argparse
import json
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
    read_summaries,
    set_threads,
    write_summary,
)
from _detection_ratio import ratio_intervals, ratio_text
from _detection_trend import (
    compute_figure,
    compute_markdown,
    compute_table,
    trend_figure,
    trend_markdown,
    trend_table,
)
from _progress import EpochLog

TARGET_RATIO = 2.0  # issue #11: Osteon's mAP@0.5 at least twice the strongest Ultralytics rival's
RATES = ("0.125", "0.25", "0.5", "1", "2", "4", "8")


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default=str(SHARED_DATA / "fracatlas"))
    p.add_argument(
        "--budget-min", type=float, nargs="+", default=[10.0, 30.0], help="Wall-clock training budgets per model"
    )
    p.add_argument("--image-size", type=int, default=512)
    p.add_argument("--yolo-image-size", type=int, default=None, help="Ultralytics' input size (default: --image-size)")
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--lr", type=float, default=None, help="Osteon's learning rate (default: the recipe's)")
    p.add_argument("--model", default=None, help="Osteon detector (default: the default recipe)")
    p.add_argument("--encoder", default=None)
    p.add_argument("--yolo", nargs="*", default=["yolov8n", "yolo26n", "yolo26n-p2"], help="Ultralytics rivals")
    p.add_argument("--seed", type=int, default=0, help="Training seed of every model (one run per budget)")
    p.add_argument("--seeds", type=int, nargs="+", default=None, help="Repeat each budget per seed; summarise across")
    p.add_argument(
        "--summarise", nargs="+", default=None, metavar="RUN", help="Only summarise earlier runs' folders across seeds"
    )
    p.add_argument(
        "--trend",
        nargs="+",
        default=None,
        metavar="SEEDS",
        help="Only draw test mAP@0.5 against the budget (the later folder of a budget given twice) and against the "
        "epochs Osteon trained (every folder), from across-seed summary folders",
    )
    p.add_argument(
        "--score-threshold", type=float, default=0.001, help="Lowest box score kept, both models (COCO-eval style)"
    )
    p.add_argument("--n-resamples", type=int, default=1000)
    p.add_argument(
        "--evaluate-trained",
        default=None,
        metavar="RUN",
        help="Only evaluate the models a run of this script trained (same --budget-min and --seed)",
    )
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out-root", default="runs")
    p.add_argument("--train-one", default=None, help=argparse.SUPPRESS)  # child process: train one model
    p.add_argument("--out-dir", default=None, help=argparse.SUPPRESS)
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


def box_scale_effect(run: Path, *, n_resamples: int, seed: int) -> dict[str, Any]:
    """Test mAP@0.5 of a run with the network's own boxes and with the box scale chosen on its validation
    predictions (Osteon's default post-processing, ``tasks/_box_scale.py``), whichever the run itself used: is the
    default's gain its training or a post-processing any detector could have?"""
    from dataclasses import replace

    from osteon.engine import Predictor

    task = Predictor.from_run(run).task
    used = task.box_scale
    fresh = type(task)(replace(task.state, extra={k: v for k, v in task.state.extra.items() if k != "calibration"}))
    chosen = fresh.calibrate(rescaled(pd.read_csv(run / "predictions_val.csv"), 1 / used))
    factor = chosen.extra["calibration"]["box_scale"] if chosen else 1.0
    test = pd.read_csv(run / "predictions_test.csv")
    out: dict[str, Any] = {"used": used, "chosen_on_val": factor}
    for key, scale in (("own_boxes", 1.0), ("val_chosen_scale", factor)):
        result = fresh.evaluate(rescaled(test, scale / used), operating_point=None, n_resamples=n_resamples, seed=seed)
        out[key] = result["map50"]
    return out


def rescaled(frame: pd.DataFrame, factor: float) -> pd.DataFrame:
    """A predictions table with every predicted box scaled about its centre by ``factor``."""
    from osteon.tasks._box_scale import scale_boxes

    def scale(cell: Any) -> Any:
        if not isinstance(cell, str) or not cell:
            return cell
        records = json.loads(cell)
        for r in records:
            r["xyxy"] = scale_boxes(np.array(r["xyxy"]), factor)[0].tolist()  # unrounded: a tiny box stays > 0 wide
        return json.dumps(records)

    return frame.assign(pred_boxes=frame["pred_boxes"].map(scale))


def box_scale_markdown(full: dict[str, Any]) -> str:
    lines = [
        "| model | box scale used | scale chosen on val | test mAP@0.5, own boxes | with the val-chosen scale |",
        "|---|---|---|---|---|",
    ]
    for name, entry in full.items():
        b = entry["box_scale"]
        lines.append(
            f"| {name} | {b['used']:g} | {b['chosen_on_val']:g} | {ci(b['own_boxes'])} | {ci(b['val_chosen_scale'])} |"
        )
    return "\n".join(lines)


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
    if args.train_one:
        train_one(args)
        return
    if args.summarise:  # seeds run separately (another day, another machine): one table across them
        summaries = read_summaries(args.summarise)
        budget = summaries[0]["budget_min"]
        if any(s["budget_min"] != budget for s in summaries):
            raise SystemExit(f"--summarise: the runs have different budgets {[s['budget_min'] for s in summaries]}")
        across_seeds(summaries, new_out_dir(f"fracatlas_detection-{budget:g}min-seeds", args.out_root))
        return
    if args.trend:
        budget_trend(read_summaries(args.trend), new_out_dir("fracatlas_detection-trend", args.out_root))
        return
    machine = machine_info()
    seeds = args.seeds or [args.seed]
    if args.evaluate_trained:
        out = Path(args.evaluate_trained)
        log(f"FracAtlas detection: evaluating the models trained in {out}")
        run_budget(args, args.budget_min[0], out, machine, threads)
        return
    per_budget = []
    for budget in args.budget_min:
        summaries = []
        for seed in seeds:
            name = f"fracatlas_detection-{budget:g}min" + (f"-seed{seed}" if args.seeds else "")
            out = new_out_dir(name, args.out_root)
            log(f"FracAtlas detection, {budget:g} min per model, seed {seed} → {out}; torch threads {threads}")
            seeded = argparse.Namespace(**{**vars(args), "seed": seed})
            summaries.append(run_budget(seeded, budget, out, machine, threads))
        if len(summaries) > 1:
            per_budget.append(
                across_seeds(summaries, new_out_dir(f"fracatlas_detection-{budget:g}min-seeds", args.out_root))
            )
    if len(per_budget) > 1:
        budget_trend(per_budget, new_out_dir("fracatlas_detection-trend", args.out_root))


def train_one(args: argparse.Namespace) -> None:
    """One model of one budget (a child process of :func:`run_budget`)."""
    from osteon.engine import train
    from osteon.engine.backends.yolo import train_yolo

    out = Path(args.out_dir)
    common = {"task": "detect", "data": args.data, "split_file": str(out / "authors_split.csv")}
    common |= {"image_size": args.image_size, "batch_size": args.batch_size, "seed": args.seed}
    common |= {"score_threshold": args.score_threshold, "out": str(out / args.train_one)}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if args.train_one == "osteon":
            chosen = {k: v for k, v in {"model": args.model, "encoder": args.encoder, "lr": args.lr}.items() if v}
            epoch_log = EpochLog("osteon")
            train(**common, **chosen, epochs=10, time_budget_min=args.budget_min[0], callbacks=[epoch_log])
        else:
            train_yolo(  # box_scale 1: Ultralytics' boxes as its recipe makes them (box_scale_effect compares)
                **{**common, "image_size": args.yolo_image_size or args.image_size},
                box_scale=1.0,
                model=args.train_one,
                epochs=300,
                ultralytics_args={"time": args.budget_min[0] / 60, "verbose": False},
            )


def run_budget(
    args: argparse.Namespace, budget_min: float, out: Path, machine: dict[str, Any], threads: int
) -> dict[str, Any]:
    """Every model trains at the same time, for the same wall-clock budget, one thread each (so they share the
    CPU alike), then each is evaluated and timed alone."""
    import subprocess
    import sys

    from osteon.engine import evaluate

    _, manifest = authors_split_file(args.data, out, keep_fraction=1.0, seed=args.seed)
    n_train = int((manifest.frame["split"] == "train").sum())
    n_val = int((manifest.frame["split"] == "val").sum())
    names = ["osteon", *args.yolo]
    forwarded = ["--image-size", str(args.image_size), "--batch-size", str(args.batch_size), "--seed", str(args.seed)]
    forwarded += ["--yolo-image-size", str(args.yolo_image_size)] if args.yolo_image_size else []
    forwarded += ["--score-threshold", str(args.score_threshold), "--threads", str(args.threads), "--data", args.data]
    forwarded += [f"--{k}={v}" for k, v in {"model": args.model, "encoder": args.encoder, "lr": args.lr}.items() if v]
    loads_file = out / "training_loads.json"
    if args.evaluate_trained:  # the models of `out` are trained: evaluate them (e.g. after a crash in evaluation)
        loads = json.loads(loads_file.read_text()) if loads_file.is_file() else {}
        load_before, load_after_training = loads.get("before"), loads.get("after_training")
    else:
        load_before = load_average()
        children = {}
        for name in names:
            command = [sys.executable, __file__, "--train-one", name, "--out-dir", str(out)]
            command += ["--budget-min", f"{budget_min}"]
            log_file = (out / f"{name}.log").open("w")
            child = subprocess.Popen([*command, *forwarded], stdout=log_file, stderr=subprocess.STDOUT)
            children[name] = (child, log_file)
        log(f"training {', '.join(names)} side by side for {budget_min:g} min each")
        for name, (child, log_file) in children.items():
            if child.wait() != 0:
                raise SystemExit(f"{name} failed (exit {child.returncode}); see {out / f'{name}.log'}")
            log_file.close()
        load_after_training = load_average()
        loads_file.write_text(json.dumps({"before": load_before, "after_training": load_after_training}))

    runs, train_seconds, epochs = {}, {}, {}
    for name in names:
        path = out / name
        training = json.loads((path / "training.json").read_text())
        plan = json.loads((path / "plan.json").read_text())
        label = f"osteon {plan['architecture']}-{plan['encoder'].removeprefix('timm:')}" if name == "osteon" else name
        runs[label] = path
        train_seconds[label] = training.get("duration_s")
        results = path / "yolo" / "train" / "results.csv"  # Ultralytics' log: one row per epoch
        epochs[label] = len(pd.read_csv(results)) if results.is_file() else training.get("epochs_run")
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
        full[name]["box_scale"] = box_scale_effect(path, n_resamples=args.n_resamples, seed=args.seed)
        log(f"{name}: mAP@0.5 {ci(result['map50'])}; speed {speeds[name]}")
    table = markdown(rows, speeds, aucs) + "\n\n" + box_scale_markdown(full)
    strongest = max((r["map50"]["estimate"] for r in rows[1:]), default=None)
    ratio = round(rows[0]["map50"]["estimate"] / strongest, 3) if strongest else None
    summary = {
        "benchmark": "fracatlas_detection",
        "budget_min": budget_min,
        "out": str(out),
        "machine": machine,
        "torch_threads": threads,
        "recipe": {k: v for k, v in vars(args).items() if k not in ("out_root", "train_one", "out_dir")},
        "osteon_plan": json.loads((out / "osteon" / "plan.json").read_text()),
        "split": {"train": n_train, "val": n_val, "test": len(test_images)},
        "train_seconds": train_seconds,
        "epochs_run": epochs,
        "load_before": load_before,
        "load_after_training": load_after_training,
        "load_after": load_average(),
        "rows": rows,
        "speeds": speeds,
        "image_auc_test_plus_negatives": aucs,
        "map50_ratio_osteon_over_strongest_rival": ratio,
        "markdown": table,
        "details": full,
    }
    write_summary(out, summary)
    print("\n" + table, flush=True)
    return summary


def across_seeds(summaries: list[dict[str, Any]], out: Path) -> dict[str, Any]:
    """Mean, SD and range over seeds of each model's test metrics, and the per-seed ratio of Osteon's mAP@0.5 to
    the strongest rival's: one run on 54 test images cannot rank detectors whose scores move this much between
    seeds (BENCHMARKS.md §4)."""
    models = [r["model"] for r in summaries[0]["rows"]]
    differing = [s["out"] for s in summaries if [r["model"] for r in s["rows"]] != models]
    if differing:
        raise SystemExit(f"not the same models as {summaries[0]['out']} ({', '.join(models)}): {', '.join(differing)}")
    per_model = {}
    for i, model in enumerate(models):
        values = {
            "map50": [s["rows"][i]["map50"]["estimate"] for s in summaries],
            "map50_95": [s["rows"][i]["map50_95"]["estimate"] for s in summaries],
            "froc_mean": [s["rows"][i]["froc_mean"]["estimate"] for s in summaries],
            "epochs": [s["epochs_run"][model] for s in summaries],
            "images_per_s": [s["speeds"][model]["images_per_s"] for s in summaries],
        }
        per_model[model] = {k: _spread(v) for k, v in values.items()}
    ratios = [s["map50_ratio_osteon_over_strongest_rival"] for s in summaries]
    lines = [
        f"{len(summaries)} seeds ({', '.join(str(s['recipe']['seed']) for s in summaries)}), "
        f"{summaries[0]['budget_min']:g} min per model: mean ± SD (min–max)",
        "",
        "| model | mAP@0.5 | mAP@0.5:0.95 | mean FROC sens. | epochs | img/s |",
        "|---|---|---|---|---|---|",
    ]
    for model, m in per_model.items():
        columns = {"map50": 3, "map50_95": 3, "froc_mean": 3, "epochs": 1, "images_per_s": 1}
        cells = " | ".join(_spread_text(m[k], digits) for k, digits in columns.items())
        lines.append(f"| {model} | {cells} |")
    means = {model: m["map50"]["mean"] for model, m in per_model.items()}
    strongest = max(models[1:], key=lambda m: means[m], default=None)
    ratio_of_means = round(means[models[0]] / means[strongest], 3) if strongest and means[strongest] else None
    lines += [
        "",
        f"mAP@0.5 ratio Osteon / strongest rival: per seed {', '.join(f'{r}' for r in ratios)}; "
        f"of the seed means {ratio_of_means} (strongest on average: {strongest})",
    ]
    intervals = ratio_intervals(summaries, n_resamples=summaries[0]["recipe"]["n_resamples"])
    if intervals:
        per_seed = ", ".join(ratio_text(v) for v in intervals["per_seed"].values())
        lines += [
            "",
            f"with 95 % CIs (test images resampled, the same resamples for every model): per seed {per_seed}; "
            f"of the seed means {ratio_text(intervals['of_seed_means'])}",
        ]
    summary = {
        "benchmark": "fracatlas_detection (across seeds)",
        "budget_min": summaries[0]["budget_min"],
        "out": str(out),
        "runs": [s["out"] for s in summaries],
        "seeds": [s["recipe"]["seed"] for s in summaries],
        "per_model": per_model,
        "map50_ratio_osteon_over_strongest_rival": ratios,
        "map50_ratio_of_seed_means": ratio_of_means,
        "strongest_rival_on_average": strongest,
        "map50_ratio_intervals": intervals,
        "markdown": "\n".join(lines),
    }
    write_summary(out, summary)
    print("\n" + summary["markdown"], flush=True)
    return summary


def budget_trend(seeds_summaries: list[dict[str, Any]], out: Path) -> dict[str, Any]:
    """``trend.png`` (and SVG/PDF) and a table of test mAP@0.5 against the budget, from the across-seed summaries
    (a budget given twice: the later folder is the one drawn against the budget), and ``compute.png`` with every
    seed of every folder against the epochs Osteon trained (the compute its window gave: the VM's speed varies
    between days). Both ratio panels mark the issue's target (2× the strongest rival)."""
    latest = {s["budget_min"]: s for s in seeds_summaries}  # dicts keep the last value given per budget
    replaced = [s["out"] for s in seeds_summaries if latest[s["budget_min"]] is not s]
    try:
        table = trend_table(list(latest.values()))
        compute = compute_table(seeds_summaries)
    except ValueError as exc:
        raise SystemExit(f"--trend: {exc}") from None
    title = "FracAtlas detection, test split"
    figure = trend_figure(table, out / "trend.png", target_ratio=TARGET_RATIO, title=title)
    compute_png = compute_figure(compute, out / "compute.png", target_ratio=TARGET_RATIO, title=title)
    notes = [f"against the budget, replaced by a later folder of the same budget: {', '.join(replaced)}"]
    summary = {
        "benchmark": "fracatlas_detection (budget trend)",
        "out": str(out),
        "runs": [s["out"] for s in seeds_summaries],
        "figure": str(figure),
        "compute_figure": str(compute_png),
        "table": table,
        "compute_table": compute,
        "markdown": "\n\n".join(
            [trend_markdown(table), *(notes if replaced else []), "By the compute:", compute_markdown(compute)]
        ),
    }
    write_summary(out, summary)
    print("\n" + summary["markdown"] + f"\n\nfigures: {figure}, {compute_png}", flush=True)
    return summary


def _spread(values: list[float | None]) -> dict[str, Any]:
    known = np.array([v for v in values if v is not None], dtype=float)
    if not len(known):
        return {"values": values, "mean": None, "sd": None, "min": None, "max": None}
    sd = float(known.std(ddof=1)) if len(known) > 1 else 0.0
    return {"values": values, "mean": known.mean(), "sd": sd, "min": known.min(), "max": known.max()}


def _spread_text(entry: dict[str, Any], digits: int) -> str:
    if entry["mean"] is None:
        return "n/a"
    mean, sd, low, high = (f"{entry[k]:.{digits}f}" for k in ("mean", "sd", "min", "max"))
    return f"{mean} ± {sd} ({low}–{high})"


if __name__ == "__main__":
    main()
