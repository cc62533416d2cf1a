"""Training throughput of the Osteon engine against a plain PyTorch loop, and the gain from channels_last / bf16.

Both sides train the same model (``create_model``, 1 channel, 2 classes) on the same in-memory
``ImageDataset`` of random images through the same ``DataLoader`` settings, with the same AdamW
optimiser and cross-entropy loss. The engine side is the real engine: ``TaskModule`` +
``build_trainer`` (its callbacks, loggers and precision plugin) + ``Trainer.fit``. Steps are timed
from ``on_train_batch_start`` of the first timed batch to ``on_train_batch_end`` of the last one (the
plain loop takes the same two timestamps), so Trainer set-up, validation and checkpoint writing are
excluded; the first ``--warmup`` steps of every repetition are excluded too. The variants run
interleaved (plain fp32, engine fp32, plain channels_last, ...) in each repetition, so a change of
load on the shared machine hits all of them alike; the summary reports the median over repetitions.

It also times the engine's augmentation per image with 1 and 2 threads, and (``--thread-check``)
the plain loop with torch's default thread count against ``--threads``.

Usage::

    .venv/bin/python benchmarks/engine_overhead.py --reps 2 --steps 6 --threads 1 --thread-check
"""

from __future__ import annotations

import argparse
import contextlib
import shutil
import statistics
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
from _common import load_average, log, machine_info, new_out_dir, quiet_lightning, set_threads, write_summary
from torch.nn import functional as F
from torch.utils.data import DataLoader

VARIANTS: dict[str, dict[str, Any]] = {
    "fp32": {"channels_last": False, "precision": "32"},
    "channels_last": {"channels_last": True, "precision": "32"},
    "bf16": {"channels_last": False, "precision": "bf16-mixed"},
}


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="resnet18")
    p.add_argument("--image-size", type=int, default=128)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--steps", type=int, default=8, help="Timed steps per repetition")
    p.add_argument("--warmup", type=int, default=2, help="Untimed steps at the start of every repetition")
    p.add_argument("--reps", type=int, default=3, help="Interleaved repetitions of every variant")
    p.add_argument("--variants", default=",".join(VARIANTS), help=f"Comma list of {', '.join(VARIANTS)}")
    p.add_argument("--threads", type=int, default=0, help="torch intra-op threads (0: torch's default)")
    p.add_argument("--thread-check", action="store_true", help="Also time the plain fp32 loop at torch's default")
    p.add_argument("--out-root", default="runs", help="Folder that receives bench-engine_overhead-<time>/")
    return p.parse_args()


# -- data and model --------------------------------------------------------------------------------
def make_dataset(n: int, size: int, *, seed: int = 0) -> Any:
    """``n`` random unit-range ``(size, size)`` images with balanced 0/1 targets, as the engine holds them."""
    from osteon.data.datasets import ImageDataset
    from osteon.data.transforms import Preprocessing

    rng = np.random.default_rng(seed)
    images = rng.random((n, size, size), dtype=np.float32).astype(np.float16)
    targets = np.arange(n, dtype=np.int64) % 2
    return ImageDataset(images, targets, Preprocessing(image_size=size))


def make_task() -> Any:
    from osteon.tasks import TaskState, build_task

    return build_task(TaskState(name="classify", target="label", class_names=["0", "1"], positive_class="1", loss="ce"))


def make_model(task: Any, name: str) -> torch.nn.Module:
    from osteon.tasks.base import make_model_for

    torch.manual_seed(0)
    return make_model_for(task, model=name, pretrained=None, covariate_dim=0, dropout=0.0)


def loader(dataset: Any, batch_size: int, task: Any, *, shuffle: bool) -> DataLoader:
    """The engine's loader settings (``num_workers=0``: images are already decoded in memory)."""
    return DataLoader(
        dataset, batch_size=batch_size, shuffle=shuffle, num_workers=0, collate_fn=getattr(task, "collate_fn", None)
    )


# -- the two sides ---------------------------------------------------------------------------------
class StepTimer(L.Callback):
    """Timestamps of every training batch's start and end."""

    def __init__(self) -> None:
        self.starts: list[float] = []
        self.ends: list[float] = []

    def on_train_batch_start(self, trainer: L.Trainer, pl_module: L.LightningModule, batch: Any, idx: int) -> None:
        self.starts.append(time.perf_counter())

    def on_train_batch_end(
        self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any, idx: int
    ) -> None:
        self.ends.append(time.perf_counter())


def run_engine(args: argparse.Namespace, variant: str, train_set: Any, val_set: Any, work: Path) -> dict[str, Any]:
    """One ``Trainer.fit`` epoch of ``warmup + steps`` batches through the engine's own module and trainer."""
    from osteon.engine.config import TrainConfig
    from osteon.engine.module import TaskModule
    from osteon.engine.rundir import RunDir
    from osteon.engine.trainer import build_trainer

    cfg = TrainConfig(
        task="classify",
        data="in-memory random images",
        model=args.model,
        image_size=args.image_size,
        batch_size=args.batch_size,
        epochs=1,
        augment=False,
        accelerator="cpu",
        devices="1",
        **VARIANTS[variant],
    )
    task = make_task()
    module = TaskModule(task, make_model(task, args.model), cfg)
    run = RunDir.create(work / f"engine-{variant}-{time.time_ns()}")
    timer = StepTimer()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        trainer, _ = build_trainer(cfg, run, callbacks=[timer], progress=False)
        trainer.fit(
            module,
            loader(train_set, args.batch_size, task, shuffle=True),
            loader(val_set, args.batch_size, task, shuffle=False),
        )
    shutil.rmtree(run.path)  # two resnet checkpoints per fit; nothing to keep
    return _window(timer.starts, timer.ends, args)


def run_plain(args: argparse.Namespace, variant: str, train_set: Any) -> dict[str, Any]:
    """The hand-written loop a PyTorch user would write for the same model, data and optimiser."""
    opts = VARIANTS[variant]
    task = make_task()
    model = make_model(task, args.model)
    if opts["channels_last"]:
        model = model.to(memory_format=torch.channels_last)
    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=1e-4)
    autocast: Callable[[], Any] = (
        (lambda: torch.autocast("cpu", dtype=torch.bfloat16))
        if opts["precision"] == "bf16-mixed"
        else contextlib.nullcontext
    )
    starts, ends = [], []
    for batch in loader(train_set, args.batch_size, task, shuffle=True):
        starts.append(time.perf_counter())
        image = batch["image"]
        if opts["channels_last"]:
            image = image.contiguous(memory_format=torch.channels_last)
        with autocast():
            loss = F.cross_entropy(model(image), batch["target"].long())
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        ends.append(time.perf_counter())
    return _window(starts, ends, args)


def _window(starts: list[float], ends: list[float], args: argparse.Namespace) -> dict[str, Any]:
    w = args.warmup
    if len(ends) < w + args.steps:
        raise RuntimeError(f"only {len(ends)} steps ran; expected {w + args.steps}")
    seconds = ends[w + args.steps - 1] - starts[w]
    steps = [e - s for s, e in zip(starts[w:], ends[w:], strict=True)]
    return {
        "seconds": seconds,
        "images_per_s": args.steps * args.batch_size / seconds,
        "median_step_s": statistics.median(steps),
    }


# -- augmentation cost -----------------------------------------------------------------------------
def time_augmentation(size: int, threads: tuple[int, ...], n: int = 200) -> dict[str, float]:
    """Milliseconds per image of the engine's default augmentation (knee recipe, with flips), per thread count."""
    from osteon.data.transforms import build_augmentation

    augment = build_augmentation(
        hflip=True, rotate_degrees=10.0, scale_range=0.1, brightness=0.1, contrast=0.1, gamma=0.1
    )
    image = torch.rand(1, size, size)
    before = torch.get_num_threads()
    out = {}
    for t in threads:
        torch.set_num_threads(t)
        for _ in range(10):
            augment(image)
        start = time.perf_counter()
        for _ in range(n):
            augment(image)
        out[f"{t}_threads_ms"] = round((time.perf_counter() - start) / n * 1000, 3)
    torch.set_num_threads(before)
    return out


# -- report ----------------------------------------------------------------------------------------
def summarise(samples: dict[str, list[dict[str, Any]]]) -> dict[str, dict[str, Any]]:
    out = {}
    for key, runs in samples.items():
        ips = [r["images_per_s"] for r in runs]
        out[key] = {
            "images_per_s_median": round(statistics.median(ips), 2),
            "images_per_s_all": [round(v, 2) for v in ips],
            "median_step_s": round(statistics.median(r["median_step_s"] for r in runs), 3),
        }
    return out


def markdown(stats: dict[str, dict[str, Any]], variants: list[str], threads: int) -> str:
    lines = [
        f"Images/s, median of repetitions (all repetitions in brackets), {threads} thread(s):",
        "",
        "| variant | plain loop | engine | engine / plain | gain vs fp32 (plain) | gain vs fp32 (engine) |",
        "|---|---|---|---|---|---|",
    ]
    for v in variants:
        p, e = stats[f"plain/{v}"], stats[f"engine/{v}"]
        ratio = e["images_per_s_median"] / p["images_per_s_median"]
        gp = p["images_per_s_median"] / stats["plain/fp32"]["images_per_s_median"] if "plain/fp32" in stats else 1
        ge = e["images_per_s_median"] / stats["engine/fp32"]["images_per_s_median"] if "engine/fp32" in stats else 1
        lines.append(
            f"| {v} | {p['images_per_s_median']:.2f} {p['images_per_s_all']} | "
            f"{e['images_per_s_median']:.2f} {e['images_per_s_all']} | {ratio:.3f}× | {gp:.2f}× | {ge:.2f}× |"
        )
    if "plain/fp32@default-threads" in stats:
        d = stats["plain/fp32@default-threads"]
        gain = d["images_per_s_median"] / stats["plain/fp32"]["images_per_s_median"]
        lines.append(
            f"| fp32, torch's default threads ({d['threads']}) | {d['images_per_s_median']:.2f} "
            f"{d['images_per_s_all']} | – | – | {gain:.2f}× | – |"
        )
    return "\n".join(lines)


def main() -> None:
    args = parse_args()
    default_threads = torch.get_num_threads()
    threads = set_threads(args.threads)
    variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    unknown = set(variants) - set(VARIANTS)
    if unknown:
        raise SystemExit(f"unknown variants {sorted(unknown)}; choose from {', '.join(VARIANTS)}")
    quiet_lightning()
    out = new_out_dir("engine_overhead", args.out_root)
    machine = machine_info()
    log(f"engine overhead benchmark → {out}; machine {machine}")
    n_train = (args.warmup + args.steps) * args.batch_size
    train_set = make_dataset(n_train, args.image_size, seed=0)
    val_set = make_dataset(args.batch_size, args.image_size, seed=1)
    load_before = load_average()
    samples: dict[str, list[dict[str, Any]]] = {}
    for rep in range(args.reps):
        for v in variants:
            for side in ("plain", "engine"):
                result = (
                    run_plain(args, v, train_set) if side == "plain" else run_engine(args, v, train_set, val_set, out)
                )
                samples.setdefault(f"{side}/{v}", []).append(result)
                log(f"rep {rep + 1}/{args.reps} {side:6s} {v:13s}: {result['images_per_s']:.2f} images/s")
        if args.thread_check and default_threads != threads:
            torch.set_num_threads(default_threads)
            result = run_plain(args, "fp32", train_set)
            torch.set_num_threads(threads)
            samples.setdefault("plain/fp32@default-threads", []).append(result)
            log(
                f"rep {rep + 1}/{args.reps} plain  fp32 @ {default_threads} threads: {result['images_per_s']:.2f} img/s"
            )
    stats = summarise(samples)
    if "plain/fp32@default-threads" in stats:
        stats["plain/fp32@default-threads"]["threads"] = default_threads
    augmentation = time_augmentation(args.image_size, tuple(sorted({1, default_threads})))
    table = markdown(stats, variants, threads)
    table += f"\n\nAugmentation (engine default + hflip, {args.image_size} px, per image): " + ", ".join(
        f"{k.replace('_threads_ms', '')} thread(s) {v} ms" for k, v in augmentation.items()
    )
    summary = {
        "benchmark": "engine_overhead",
        "out": str(out),
        "machine": machine,
        "settings": {**vars(args), "threads_used": threads, "torch_default_threads": default_threads},
        "load_before": load_before,
        "load_after": load_average(),
        "results": stats,
        "augmentation_ms_per_image": augmentation,
        "engine_over_plain": {
            v: round(stats[f"engine/{v}"]["images_per_s_median"] / stats[f"plain/{v}"]["images_per_s_median"], 3)
            for v in variants
        },
        "markdown": table,
    }
    write_summary(out, summary)
    print("\n" + table, flush=True)


if __name__ == "__main__":
    main()
