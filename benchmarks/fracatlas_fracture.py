"""FracAtlas fracture yes/no on the shared subset: AUC with CI, sensitivity/specificity, the hardware shortcut.

The authors' split covers only fractured images, so the engine generates a seeded split grouped by
duplicate content and stratified by the target. The threshold is chosen on validation (Youden) and
applied unchanged to test. Hardware (orthopaedic implants) sits on 84 fractured images but only 1
non-fractured one in this subset, so a model can score by spotting metal: the script also reports the
test metrics on the images without hardware, joining ``predictions_test.csv`` with the run's
``manifest.csv``.

Usage::

    .venv/bin/python benchmarks/fracatlas_fracture.py --epochs 8 --image-size 192 --threads 1
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

KEYS = ("auc", "sensitivity", "specificity", "ppv", "npv", "accuracy", "balanced_accuracy")


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default=str(SHARED_DATA / "fracatlas"), help="FracAtlas root folder")
    p.add_argument("--epochs", type=int, default=8)
    p.add_argument("--model", default="resnet18")
    p.add_argument("--image-size", type=int, default=192)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--hflip", action="store_true", help="Horizontal flips (off by default, as in the engine)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--n-resamples", type=int, default=1000, help="Bootstrap resamples for the CIs")
    p.add_argument("--threads", type=int, default=0, help="torch intra-op threads (0: torch's default)")
    p.add_argument("--out-root", default="runs", help="Folder that receives bench-fracatlas_fracture-<time>/")
    return p.parse_args()


def subgroup_reports(run_path: Path, threshold: float, *, n_resamples: int, seed: int) -> dict[str, Any]:
    """Test metrics by the manifest's ``hardware`` column, at the validation threshold."""
    from osteon.metrics import binary_report

    preds = pd.read_csv(run_path / "predictions_test.csv", dtype={"truth": str, "error": str})
    manifest = pd.read_csv(run_path / "manifest.csv", usecols=["image", "hardware", "body_part"])
    # predictions hold manifest-root-joined paths, manifest.csv paths relative to the run: compare resolved paths
    preds["key"] = [str(Path(p).resolve()) for p in preds["image"]]
    manifest["key"] = [str((run_path / p).resolve()) for p in manifest.pop("image")]
    joined = preds.merge(manifest, on="key", how="left", validate="one_to_one")
    if joined["hardware"].isna().any():
        raise RuntimeError(f"{run_path}: {int(joined['hardware'].isna().sum())} test rows not found in manifest.csv")
    joined = joined[joined["error"].fillna("") == ""]
    out: dict[str, Any] = {}
    for name, rows in (("all", joined), ("no_hardware", joined[joined["hardware"] == 0])):
        y = (rows["truth"] == "1").to_numpy(int)
        out[name] = {"n": len(rows), "n_positive": int(y.sum()), "n_negative": int(len(y) - y.sum())}
        if 0 < y.sum() < len(y):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                report = binary_report(
                    y, rows["prob_1"].to_numpy(), threshold=threshold, n_resamples=n_resamples, seed=seed
                )
            out[name].update({k: report[k] for k in KEYS})
    with_hw = joined[joined["hardware"] == 1]
    out["hardware"] = {
        "n": len(with_hw),
        "n_positive": int((with_hw["truth"] == "1").sum()),
        "mean_prob_fractured": round(float(with_hw["prob_1"].mean()), 3) if len(with_hw) else None,
        "note": "almost all positives: AUC is undefined or meaningless here",
    }
    out["by_body_part"] = {
        str(part): {"n": len(rows), "n_positive": int((rows["truth"] == "1").sum())}
        for part, rows in joined.groupby("body_part", dropna=False)
    }
    return out


def markdown(result: dict[str, Any], subgroups: dict[str, Any], threshold: float) -> str:
    lines = [
        f"Operating point: threshold {threshold:.3f} chosen on validation (Youden), applied to test.",
        "",
        "| test subset | n (pos/neg) | AUC (95% CI) | sensitivity | specificity | balanced accuracy |",
        "|---|---|---|---|---|---|",
    ]
    for name in ("all", "no_hardware"):
        g = subgroups[name]
        lines.append(
            f"| {name.replace('_', ' ')} | {g['n']} ({g['n_positive']}/{g['n_negative']}) | {ci(g.get('auc'))} | "
            f"{ci(g.get('sensitivity'))} | {ci(g.get('specificity'))} | {ci(g.get('balanced_accuracy'))} |"
        )
    hw = subgroups["hardware"]
    lines.append(
        f"| with hardware | {hw['n']} ({hw['n_positive']} pos) | – | mean P(fractured) {hw['mean_prob_fractured']} "
        "| – | – |"
    )
    return "\n".join(lines)


def main() -> None:
    args = parse_args()
    set_threads(args.threads)
    quiet_lightning()
    out = new_out_dir("fracatlas_fracture", args.out_root)
    machine = machine_info()
    log(f"FracAtlas fracture benchmark → {out}; machine {machine}")
    from osteon.engine import evaluate, train

    epoch_log = EpochLog("fracatlas")
    load_before = load_average()
    with Stopwatch() as t_train, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the generated-split notice is recorded in state.json
        run = train(
            task="classify",
            data=args.data,
            target="fractured",
            out=str(out / "run"),
            model=args.model,
            image_size=args.image_size,
            epochs=args.epochs,
            batch_size=args.batch_size,
            lr=args.lr,
            hflip=args.hflip,
            seed=args.seed,
            callbacks=[epoch_log],
            progress=False,
        )
    log(f"trained in {t_train.seconds:.0f} s; evaluating the test split")
    with Stopwatch() as t_eval:
        result = evaluate(run.path, split="test", n_resamples=args.n_resamples, progress=False)
    threshold = float(result["operating_point"]["threshold"])
    subgroups = subgroup_reports(run.path, threshold, n_resamples=args.n_resamples, seed=args.seed)
    state = run.read_json(run.state)
    split_counts = pd.read_csv(run.path / "manifest.csv", usecols=["split", "fractured"]).value_counts().to_dict()
    table = markdown(result, subgroups, threshold)
    summary = {
        "benchmark": "fracatlas_fracture",
        "out": str(out),
        "machine": machine,
        "recipe": {k: v for k, v in vars(args).items() if k != "out_root"},
        "split": state.get("split"),
        "split_counts": {f"{s}/fractured={f}": n for (s, f), n in sorted(split_counts.items())},
        "best_epoch": int(run.read_json(run.path / "training.json").get("best_epoch", -2)) + 1,
        "train_seconds": round(t_train.seconds, 1),
        "eval_seconds": round(t_eval.seconds, 1),
        "epochs": epoch_log.epochs,
        "load_before": load_before,
        "load_after": load_average(),
        "operating_point": result["operating_point"],
        "test": {k: result[k] for k in (*KEYS, "n", "n_positive", "n_negative", "confusion_matrix")},
        "subgroups": subgroups,
        "markdown": table,
    }
    write_summary(out, summary)
    print("\n" + table, flush=True)


if __name__ == "__main__":
    main()
