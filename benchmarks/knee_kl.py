"""Knee Kellgren–Lawrence grading on the shared Chen 2018 subset: accuracy, QWK with CI, per grade, wall time.

Trains one run per epoch budget (the cosine schedule depends on the number of epochs, so a longer
budget is a new run, not a continuation), evaluates each on the shipped test split, and prints a
markdown table and a JSON summary. Runs go under ``runs/bench-knee_kl-<UTC time>/e<epochs>``.

Usage::

    .venv/bin/python benchmarks/knee_kl.py --epochs 5,10,20
    .venv/bin/python benchmarks/knee_kl.py --epochs 1            # time one epoch before planning

Published anchors, on the full data set (5,778 training images; this subset has 600):
accuracy 0.697 (Chen 2019), 0.717 (OsteoHRNet); QWK 0.83 (Tiulpin 2018, on OAI).
"""

from __future__ import annotations

import argparse
import warnings
from pathlib import Path
from typing import Any

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

ANCHORS = {
    "accuracy": "0.697 (Chen 2019), 0.717 (OsteoHRNet), full data, 5,778 training images",
    "qwk": "0.83 (Tiulpin 2018, OAI)",
}


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default=str(SHARED_DATA / "knee_kl_chen2018"), help="Dataset folder (train/val/test)")
    p.add_argument("--epochs", default="5,10,20", help="Comma list of epoch budgets; one run each")
    p.add_argument("--model", default="resnet18")
    p.add_argument("--image-size", type=int, default=128)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--loss", default="corn", help="corn | ce")
    p.add_argument("--no-hflip", action="store_true", help="Turn off horizontal flips (on by default: L/R knees)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--n-resamples", type=int, default=1000, help="Bootstrap resamples for the CIs")
    p.add_argument("--threads", type=int, default=0, help="torch intra-op threads (0: torch's default)")
    p.add_argument("--out-root", default="runs", help="Folder that receives bench-knee_kl-<time>/")
    return p.parse_args()


def run_one(args: argparse.Namespace, epochs: int, out: Path) -> dict[str, Any]:
    from osteon.engine import evaluate, train

    label = f"knee e{epochs}"
    epoch_log = EpochLog(label)
    load_before = load_average()
    with Stopwatch() as t_train, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Lightning's num_workers / logging advice, not results
        run = train(
            task="grade",
            data=args.data,
            out=str(out / f"e{epochs}"),
            model=args.model,
            image_size=args.image_size,
            epochs=epochs,
            batch_size=args.batch_size,
            lr=args.lr,
            loss=args.loss,
            hflip=not args.no_hflip,
            seed=args.seed,
            callbacks=[epoch_log],
            progress=False,
        )
    log(f"{label}: trained in {t_train.seconds:.0f} s; evaluating the test split")
    with Stopwatch() as t_eval:
        result = evaluate(run.path, split="test", n_resamples=args.n_resamples, progress=False)
    best = run.read_json(run.path / "training.json").get("best_epoch")
    per_grade = {
        row["class"]: {
            "support": row["support"],
            "sensitivity": row["sensitivity"],
            "specificity": row["specificity"],
            "auc": row["auc"],
        }
        for row in result["per_class"]
    }
    return {
        "epochs": epochs,
        "run": str(run.path),
        "best_epoch": None if best is None else int(best) + 1,
        "train_seconds": round(t_train.seconds, 1),
        "eval_seconds": round(t_eval.seconds, 1),
        "seconds_per_epoch": [e["seconds"] for e in epoch_log.epochs],
        "val_score_per_epoch": [e["val_score"] for e in epoch_log.epochs],
        "load_before": load_before,
        "load_after": load_average(),
        "n_test": result["n_images"],
        "accuracy": result["accuracy"],
        "balanced_accuracy": result["balanced_accuracy"],
        "qwk": result["qwk"],
        "mae_grades": result["mae_grades"],
        "within_one_accuracy": result["within_one_accuracy"],
        "macro_auc": result["macro_auc"],
        "confusion_matrix": result["confusion_matrix"],
        "per_grade": per_grade,
    }


def markdown(rows: list[dict[str, Any]]) -> str:
    lines = [
        "| epochs | best epoch | train s | s/epoch (median) | accuracy (95% CI) | QWK (95% CI) | MAE grades | "
        "within ±1 |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        per_epoch = sorted(r["seconds_per_epoch"])
        median = per_epoch[len(per_epoch) // 2] if per_epoch else float("nan")
        lines.append(
            f"| {r['epochs']} | {r['best_epoch']} | {r['train_seconds']:.0f} | {median:.1f} | {ci(r['accuracy'])} | "
            f"{ci(r['qwk'])} | {ci(r['mae_grades'], 2)} | {ci(r['within_one_accuracy'])} |"
        )
    lines += ["", "Per grade (sensitivity = recall of that grade, 95% CI), by epoch budget:", ""]
    grades = list(rows[0]["per_grade"]) if rows else []
    lines.append("| epochs | " + " | ".join(f"KL{g} (n={rows[0]['per_grade'][g]['support']})" for g in grades) + " |")
    lines.append("|---|" + "---|" * len(grades))
    for r in rows:
        cells = " | ".join(ci(r["per_grade"][g]["sensitivity"], 2) for g in grades)
        lines.append(f"| {r['epochs']} | {cells} |")
    return "\n".join(lines)


def main() -> None:
    args = parse_args()
    budgets = [int(e) for e in args.epochs.split(",") if e.strip()]
    set_threads(args.threads)
    quiet_lightning()
    out = new_out_dir("knee_kl", args.out_root)
    machine = machine_info()
    log(f"knee KL benchmark → {out}; budgets {budgets}; machine {machine}")
    rows = []
    with Stopwatch() as total:
        for epochs in budgets:
            rows.append(run_one(args, epochs, out))
            r = rows[-1]
            log(f"knee e{epochs}: accuracy {ci(r['accuracy'])}, QWK {ci(r['qwk'])}")
    table = markdown(rows)
    summary = {
        "benchmark": "knee_kl",
        "out": str(out),
        "machine": machine,
        "recipe": {k: v for k, v in vars(args).items() if k != "out_root"},
        "anchors": ANCHORS,
        "total_seconds": round(total.seconds, 1),
        "results": rows,
        "markdown": table,
    }
    write_summary(out, summary)
    print("\n" + table, flush=True)


if __name__ == "__main__":
    main()
