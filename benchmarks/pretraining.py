"""In-domain self-supervised pretraining, then fine-tuning, against training from scratch (issue #12, experiments 1–2).

Everything goes through the command line, as a user runs it:

1. ``split``: the FracAtlas fracture split (seeded, grouped by duplicate content, stratified by ``fractured``: the
   one ``osteon train`` generates) is written once, so that the pretraining set can leave the test images out;
   the knee test split is the dataset's own.
2. ``pretrain``: ``osteon pretrain`` on the unlabelled images of ``../shared/data`` — FracAtlas without its test
   images, knee KL train+val (``exclude_splits`` drops test), the wrist, pelvis DICOM and both ultrasound folders.
   ``knee_kl_bilateral`` is left out: it comes from the same cohort (OAI) as the knee test split.
3. ``probe``: ``osteon probe`` of the pretrained backbone and of a random one (k-NN and linear probe, test split).
4. ``finetune``: FracAtlas fracture yes/no and knee KL, scratch vs ``--pretrained RUN`` at the same fine-tuning
   epochs, run two at a time (one thread each); ``osteon evaluate`` on test; DeLong's paired test (FracAtlas) and
   a paired bootstrap of QWK (knee). The pretraining cost is reported beside them (it is paid once for every task).

    .venv/bin/python benchmarks/pretraining.py --stages split,pretrain,probe,finetune --pretrain-epochs 10
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pandas as pd
from _common import SHARED_DATA, load_average, log, machine_info, write_summary

OSTEON = str(Path(sys.executable).with_name("osteon"))


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default="runs/bench-pretraining")
    p.add_argument("--stages", default="split,pretrain,probe,finetune")
    p.add_argument("--method", default="simclr")
    p.add_argument("--model", default="resnet18")
    p.add_argument("--pretrain-epochs", type=int, default=10)
    p.add_argument("--pretrain-size", type=int, default=128)
    p.add_argument("--pretrain-threads", type=int, default=2)
    p.add_argument("--fa-size", type=int, default=192)
    p.add_argument("--fa-epochs", type=int, default=8)
    p.add_argument("--knee-size", type=int, default=128)
    p.add_argument("--knee-epochs", type=int, default=10)
    p.add_argument("--n-resamples", type=int, default=1000)
    return p.parse_args()


def osteon(*args: str, log_to: Path, threads: int = 1) -> subprocess.Popen[bytes]:
    env = os.environ | {"OMP_NUM_THREADS": str(threads)}
    log_to.parent.mkdir(parents=True, exist_ok=True)
    handle = log_to.open("wb")
    log(f"$ osteon {' '.join(args)}")
    return subprocess.Popen([OSTEON, *args], stdout=handle, stderr=subprocess.STDOUT, env=env)


def wait(*procs: subprocess.Popen[bytes]) -> None:
    for proc in procs:
        if proc.wait() != 0:
            raise SystemExit(f"{proc.args} failed (exit {proc.returncode}); see its log")


def fracatlas_split(out: Path) -> Path:
    """The manifest with the fracture split (the engine's own generator) and the list of non-test images."""
    from osteon.data.adapters import load_dataset
    from osteon.data.splits import make_splits

    manifest = load_dataset(str(SHARED_DATA / "fracatlas"))
    frame = manifest.frame
    frame["fractured"] = frame["fractured"].astype(int).astype(str)
    frame["split"] = make_splits(manifest, stratify="fractured", seed=0)
    manifest.save(out / "fracatlas.csv", overwrite=True)
    return out / "fracatlas.csv"


def main() -> None:
    args = parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    stages = set(args.stages.split(","))
    summary_path = out / "summary.json"
    summary: dict[str, Any] = json.loads(summary_path.read_text()) if summary_path.is_file() else {}
    summary.setdefault("machine", machine_info())
    summary["recipe"] = vars(args)
    pre = out / "pretrain"
    fa_csv = out / "fracatlas.csv"
    if "split" in stages:
        fracatlas_split(out)
    if "pretrain" in stages:
        data = [
            str(fa_csv),
            str(SHARED_DATA / "knee_kl_chen2018"),
            str(SHARED_DATA / "grazpedwri_dx_sample" / "images"),
            str(SHARED_DATA / "ddh_pelvis_xray_dicom" / "dicoms"),
            str(SHARED_DATA / "muscle_us_dltrack" / "aponeurosis"),
            str(SHARED_DATA / "muscle_us_dltrack" / "fascicle"),
            str(SHARED_DATA / "hip_us_nhbs_spj"),
        ]
        started, load = time.perf_counter(), load_average()
        wait(
            osteon(
                "pretrain",
                *data,
                "--method",
                args.method,
                "--model",
                args.model,
                "--epochs",
                str(args.pretrain_epochs),
                "--image-size",
                str(args.pretrain_size),
                "--batch-size",
                "64",
                "--threads",
                str(args.pretrain_threads),
                "--out",
                str(pre),
                log_to=out / "logs" / "pretrain.log",
                threads=args.pretrain_threads,
            )
        )
        summary["pretrain"] = {"seconds": round(time.perf_counter() - started, 1), "load_before": load}
        summary["pretrain"]["load_after"] = load_average()
        log(f"pretrained in {summary['pretrain']['seconds']:.0f} s")
    if "probe" in stages:
        jobs = []
        for name, data, target, split in (
            ("fracatlas", str(fa_csv), "fractured", None),
            ("knee", str(SHARED_DATA / "knee_kl_chen2018"), "label", None),
        ):
            extra = ["--split-file", split] if split else []
            jobs.append(
                osteon(
                    "probe",
                    str(pre),
                    "--data",
                    data,
                    "--target",
                    target,
                    "--out",
                    str(out / f"probe_{name}"),
                    "--baseline",
                    "--n-resamples",
                    str(args.n_resamples),
                    *extra,
                    log_to=out / "logs" / f"probe_{name}.log",
                )
            )
        wait(*jobs)
        summary["probe"] = {
            name: json.loads((out / f"probe_{name}" / "probe.json").read_text()) for name in ("fracatlas", "knee")
        }
    if "finetune" in stages:
        arms = {
            "fracatlas": (["--data", str(fa_csv), "--target", "fractured"], args.fa_size, args.fa_epochs),
            "knee": (
                ["--data", str(SHARED_DATA / "knee_kl_chen2018"), "--task", "grade"],
                args.knee_size,
                args.knee_epochs,
            ),
        }
        results = summary.setdefault("finetune", {})
        for name, (data, size, epochs) in arms.items():
            task = [] if "--task" in data else ["--task", "classify"]
            common = [*task, *data, "--model", args.model, "--image-size", str(size), "--epochs", str(epochs)]
            common += ["--threads", "1", "--num-workers", "0", "--seed", "0"]
            started, load = time.perf_counter(), load_average()
            jobs = [
                osteon(
                    "train", *common, "--out", str(out / f"{name}_scratch"), log_to=out / "logs" / f"{name}_scratch.log"
                ),
                osteon(
                    "train",
                    *common,
                    "--pretrained",
                    str(pre),
                    "--out",
                    str(out / f"{name}_pretrained"),
                    log_to=out / "logs" / f"{name}_pretrained.log",
                ),
            ]
            wait(*jobs)
            seconds = round(time.perf_counter() - started, 1)
            for arm in ("scratch", "pretrained"):
                run = out / f"{name}_{arm}"
                wait(osteon("evaluate", str(run), "--split", "test", log_to=out / "logs" / f"{name}_{arm}_eval.log"))
                results[f"{name}/{arm}"] = json.loads((run / "metrics.json").read_text())["test"]
            results[f"{name}/wall_seconds_both"] = seconds
            results[f"{name}/load"] = [load, load_average()]
            results[f"{name}/paired"] = paired(
                out / f"{name}_scratch", out / f"{name}_pretrained", name, args.n_resamples
            )
            log(f"{name}: {json.dumps(results[f'{name}/paired'], default=float)}")
    write_summary(out, summary)


def paired(scratch: Path, pretrained: Path, name: str, n_resamples: int) -> dict[str, Any]:
    """DeLong (binary) or a paired patient bootstrap of QWK (grades) on the same test images."""
    from osteon import metrics
    from osteon.metrics.delong import delong_test

    a = pd.read_csv(pretrained / "predictions_test.csv", dtype={"truth": str}).set_index("image")
    b = pd.read_csv(scratch / "predictions_test.csv", dtype={"truth": str}).set_index("image").loc[a.index]
    if name == "fracatlas":
        y = (a["truth"] == "1").to_numpy(int)
        auc_a, auc_b, z, p = delong_test(y, a["prob_1"].to_numpy(), b["prob_1"].to_numpy())
        return {"auc_pretrained": auc_a, "auc_scratch": auc_b, "z": z, "p": p}
    diff, ci, p = metrics.paired_bootstrap_test(
        metrics.quadratic_weighted_kappa_score,
        a["truth"].astype(int).to_numpy(),
        a["prediction"].astype(int).to_numpy(),
        b["prediction"].astype(int).to_numpy(),
        groups=a["patient_id"].to_numpy() if "patient_id" in a else None,
        n_resamples=n_resamples,
    )
    return {"qwk_diff": diff, "low": ci.low, "high": ci.high, "p": p}


if __name__ == "__main__":
    main()
