"""FracAtlas multi-task (fracture + body part + hardware in one model) against three single-task models (issue #13,
experiment 3) at the same total training budget.

Data: ``../shared/data/fracatlas`` read by Osteon's FracAtlas adapter (``fractured``, ``body_part`` in five groups,
``hardware``). The multi-task run generates the seeded split (grouped by duplicate content, stratified by
``fractured``); the three single-task runs read that same split (``split_file``). Budget: the multi-task model
trains ``E`` epochs; each single-task model trains ``E // 3`` epochs, so the three together see the same number
of images (and cost about the same CPU time: both are reported). Scores on the test split: AUC for fracture and
hardware, macro AUC / balanced accuracy for body part, each with 95% bootstrap CIs; DeLong's paired test for the
two binary targets (same test images). A second single-task arm at the full ``E`` epochs each (three times the
budget) is optional (``--also-full``).

    .venv/bin/python benchmarks/fracatlas_multitask.py --epochs 9 --image-size 192 --threads 1
"""

from __future__ import annotations

import argparse
import warnings
from pathlib import Path
from typing import Any

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

TARGETS = ("fractured", "body_part", "hardware")
BINARY = ("fractured", "hardware")


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default=str(SHARED_DATA / "fracatlas"))
    p.add_argument("--epochs", type=int, default=9, help="Multi-task epochs; each single-task model gets epochs // 3")
    p.add_argument("--model", default="resnet18")
    p.add_argument("--image-size", type=int, default=192)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--n-resamples", type=int, default=1000)
    p.add_argument("--threads", type=int, default=0)
    p.add_argument("--also-full", action="store_true", help="Also train each single-task model for the full epochs")
    p.add_argument("--out-root", default="runs")
    return p.parse_args()


def scores(report: dict[str, Any], target: str) -> dict[str, Any]:
    keys = ("auc", "sensitivity", "specificity") if target in BINARY else ("macro_auc", "balanced_accuracy", "accuracy")
    return {k: report.get(k) for k in keys} | {"n": report.get("n")}


def probabilities(run_path: Path, target: str, multitask: bool) -> pd.Series:
    """P(positive) per test image for a binary target (the multi-task table prefixes the head's columns)."""
    table = pd.read_csv(run_path / "predictions_test.csv", dtype=str)
    column = f"{target}.prob_1" if multitask else "prob_1"
    table = table[table["error"].fillna("") == ""] if "error" in table else table
    return pd.Series(table[column].astype(float).to_numpy(), index=[Path(p).name for p in table["image"]])


def truth(run_path: Path, target: str) -> pd.Series:
    table = pd.read_csv(run_path / "manifest.csv", dtype=str)
    table = table[table["split"] == "test"]
    return pd.Series(table[target].astype(int).to_numpy(), index=[Path(p).name for p in table["image"]])


def main() -> None:
    args = parse_args()
    set_threads(args.threads)
    quiet_lightning()
    out = new_out_dir("fracatlas_multitask", args.out_root)
    machine = machine_info()
    log(f"FracAtlas multi-task benchmark → {out}; machine {machine}")
    from osteon.engine import evaluate, train
    from osteon.metrics.delong import delong_test

    common = dict(
        data=args.data, model=args.model, image_size=args.image_size, batch_size=args.batch_size, lr=args.lr,
        seed=args.seed, progress=False,
    )  # fmt: skip
    arms: dict[str, dict[str, Any]] = {}
    load_before = load_average()

    def run_arm(name: str, **options: Any) -> Any:
        epoch_log = EpochLog(name)
        with Stopwatch() as clock, warnings.catch_warnings():
            warnings.simplefilter("ignore")
            run = train(out=str(out / name), callbacks=[epoch_log], **common, **options)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            report = evaluate(run.path, split="test", n_resamples=args.n_resamples, progress=False)
        log(f"{name}: trained in {clock.seconds:.0f} s (load {load_average()})")
        arms[name] = {"train_s": round(clock.seconds, 1), "epochs": options["epochs"], "report": report}
        return run

    multi = run_arm("multitask", task="multitask", target=",".join(TARGETS), epochs=args.epochs)
    split_file = multi.path / "splits.csv"  # the generated split, keyed by the dataset's own image entries
    budgets = {"single": max(1, args.epochs // 3)} | ({"single_full": args.epochs} if args.also_full else {})
    for prefix, epochs in budgets.items():
        for target in TARGETS:
            run_arm(f"{prefix}_{target}", task="classify", target=target, epochs=epochs, split_file=str(split_file))

    table: dict[str, Any] = {}
    for target in TARGETS:
        table[target] = {"multitask": scores(arms["multitask"]["report"]["per_target"][target], target)}
        for prefix in budgets:
            table[target][prefix] = scores(arms[f"{prefix}_{target}"]["report"], target)
    paired: dict[str, Any] = {}
    for target in BINARY:
        y = truth(multi.path, target)
        p_multi = probabilities(multi.path, target, multitask=True).loc[y.index]
        for prefix in budgets:
            p_single = probabilities(out / f"{prefix}_{target}", target, multitask=False).loc[y.index]
            auc_m, auc_s, z, p = delong_test(y.to_numpy(), p_multi.to_numpy(), p_single.to_numpy())
            paired[f"{target}/{prefix}"] = {"auc_multitask": auc_m, "auc_single": auc_s, "z": z, "p": p}
    lines = [
        "| target | metric | multi-task | " + " | ".join(budgets) + " |",
        "|---|---|---|" + "---|" * len(budgets),
    ]
    for target in TARGETS:
        for key in table[target]["multitask"]:
            if key == "n":
                continue
            cells = [ci(table[target][arm][key]) for arm in ("multitask", *budgets)]
            lines.append(f"| {target} | {key} | " + " | ".join(cells) + " |")
    seconds = {name: arm["train_s"] for name, arm in arms.items()}
    lines.append("")
    lines.append(
        "train seconds: " + ", ".join(f"{k} {v:.0f}" for k, v in seconds.items())
        + f"; single total {sum(v for k, v in seconds.items() if k.startswith('single_') and 'full' not in k):.0f}"
    )  # fmt: skip
    for key, row in paired.items():
        auc_m, auc_s = row["auc_multitask"], row["auc_single"]
        lines.append(f"DeLong {key}: multi {auc_m:.3f} vs single {auc_s:.3f}, p = {row['p']:.3g}")
    markdown = "\n".join(lines)
    summary = {
        "benchmark": "fracatlas_multitask",
        "out": str(out),
        "machine": machine,
        "recipe": {k: v for k, v in vars(args).items() if k != "out_root"},
        "load_before": load_before,
        "load_after": load_average(),
        "train_seconds": seconds,
        "test": table,
        "paired_delong": paired,
        "markdown": markdown,
    }
    write_summary(out, summary)
    print("\n" + markdown, flush=True)


if __name__ == "__main__":
    main()
