"""A standard-plane quality gate as the first stage of a pipeline (issue #13, experiment 4).

Data: ../shared/data/hip_us_nhbs_spj (51 infant hip ultrasound images: 26 standard, 25 substandard in five kinds;
two standard files are byte-identical and are kept in one fold). 5-fold cross-validation grouped by content hash
and stratified by label: each fold trains the gate (classify standard vs substandard; val = the next fold, which
chooses the operating point), then runs the one-stage pipeline on its test fold. The out-of-fold results are
pooled: the gate's sensitivity (standard planes passed) and specificity (substandard planes stopped) with 95%
bootstrap CIs, and what it passes on, by kind of substandard plane.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/hip_us_gate.py --epochs 15 --image-size 128 --model resnet18
"""

from __future__ import annotations

import argparse
import json
import time
import warnings
from pathlib import Path

import pandas as pd

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "hip_us_nhbs_spj"


def manifest_frame() -> pd.DataFrame:
    md5 = pd.read_csv(DATA / "MANIFEST.csv").set_index("path")["md5"]
    rows = []
    for path in sorted(DATA.rglob("*.png")):
        rel = str(path.relative_to(DATA))
        standard = rel.startswith("standard_ultrasound")
        rows.append(
            {
                "image": str(path),
                "patient_id": md5[rel],  # one image per case; identical files share an id (kept in one fold)
                "label": "standard" if standard else "substandard",
                "reason": "" if standard else path.parent.name,
            }
        )
    return pd.DataFrame(rows)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--image-size", type=int, default=128)
    parser.add_argument("--model", default="resnet18")
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--out", default="runs/bench_hip_gate")
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    import torch
    from sklearn.model_selection import StratifiedGroupKFold

    from osteon import metrics
    from osteon.data.manifest import Manifest
    from osteon.engine import train
    from osteon.pipelines.runner import Pipeline
    from osteon.pipelines.schema import parse_pipeline

    torch.set_num_threads(1)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    frame = manifest_frame()
    folds = list(
        StratifiedGroupKFold(n_splits=args.folds, shuffle=True, random_state=0).split(
            frame, frame["label"], frame["patient_id"]
        )
    )
    fold_of = pd.Series(-1, index=frame.index)
    for k, (_, test) in enumerate(folds):
        fold_of.iloc[test] = k
    pooled, started = [], time.perf_counter()
    for k in range(args.folds):
        split = fold_of.map(lambda f, k=k: "test" if f == k else ("val" if f == (k + 1) % args.folds else "train"))
        data = frame.assign(split=split.to_numpy())
        data.to_csv(out / f"fold{k}.csv", index=False)
        run_dir = out / f"gate_fold{k}"
        if not (run_dir / "model.pt").is_file():
            train(
                task="classify", data=str(out / f"fold{k}.csv"), target="label", positive_class="standard",
                model=args.model, image_size=args.image_size, epochs=args.epochs, batch_size=8, lr=1e-3, seed=0,
                out=str(run_dir), progress=False,
            )  # fmt: skip
        point = json.loads((run_dir / "operating_point.json").read_text())["threshold"]
        spec = parse_pipeline(
            {
                "name": "hip-us-gate",
                "runs": {"gate": str(run_dir.resolve())},
                "stages": [{"name": "gate", "run": "gate", "gate": {"class": "standard", "min_probability": point}}],
                "findings": [{"name": "standard_plane", "stage": "gate", "truth": "label", "positive": "standard"}],
            }
        )
        test = data[data["split"] == "test"].reset_index(drop=True)
        result = Pipeline.from_spec(spec).run(Manifest(test, root="/", name=f"fold{k}"))
        f = result.findings.assign(reason=test["reason"].to_numpy(), label=test["label"].to_numpy(), fold=k)
        pooled.append(f)
    table = pd.concat(pooled, ignore_index=True)
    table.to_csv(out / "out_of_fold.csv", index=False)
    y = (table["label"] == "standard").to_numpy(int)
    passed = table["positive"].astype(bool).to_numpy()
    # pooled decisions at each fold's own operating point: score 1 = passed, so the threshold 0.5 reads them
    report = metrics.binary_report(y, passed.astype(float), threshold=0.5, groups=table["patient_id"], n_resamples=2000)
    auc = metrics.binary_report(y, table["probability"].to_numpy(float), threshold=0.5, groups=table["patient_id"])
    by_reason = table[table["label"] == "substandard"].groupby("reason")["positive"].agg(["sum", "count"])
    summary = {
        "n": len(table),
        "sensitivity_standard_passed": report["sensitivity"],
        "specificity_substandard_stopped": report["specificity"],
        "pooled_auc_of_probabilities": auc["auc"],
        "substandard_passed_by_reason": {r: f"{int(s)}/{int(c)}" for r, (s, c) in by_reason.iterrows()},
        "standard_stopped": int(((table["label"] == "standard") & ~passed).sum()),
        "seconds": round(time.perf_counter() - started, 1),
        "settings": vars(args),
    }
    print(json.dumps(summary, indent=1, default=float))
    (out / "results.json").write_text(json.dumps(summary, indent=1, default=float))


if __name__ == "__main__":
    main()
