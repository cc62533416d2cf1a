"""Helpers shared by the benchmark scripts: machine description, load, timestamped output folders.

Not part of the osteon package: benchmarks measure it from the outside, like a user would.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO / ".." / "shared" / "data"


def utc_now() -> str:
    """``date -u`` style timestamp, e.g. ``2026-11-27T10:58:42Z``."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def load_average() -> str:
    """The 1/5/15-minute load averages (what ``uptime`` prints), as one string."""
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "unknown"


def machine_info() -> dict[str, Any]:
    """CPU model, core count, RAM, GPU, and the versions of the libraries that set the speed."""
    import lightning
    import timm
    import torch

    cpu = platform.processor() or "unknown"
    flags: list[str] = []
    ram_gib = float("nan")
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
            elif line.startswith("flags") and not flags:
                flags = [
                    f for f in line.split(":", 1)[1].split() if f in ("avx2", "avx512f", "avx512_bf16", "amx_bf16")
                ]
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                ram_gib = round(int(line.split()[1]) / 2**20, 1)
    except OSError:
        pass
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none"
    return {
        "date_utc": utc_now(),
        "nproc": os.cpu_count(),
        "cpu": cpu,
        "cpu_flags": flags,
        "ram_gib": ram_gib,
        "gpu": gpu,
        "torch_threads": torch.get_num_threads(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "lightning": lightning.__version__,
        "timm": timm.__version__,
        "git_commit": _git_commit(),
    }


def _git_commit() -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True)
        return out.stdout.strip() or "unknown"
    except OSError:
        return "unknown"


def new_out_dir(name: str, root: str | Path = "runs") -> Path:
    """A fresh ``runs/bench-<name>-<UTC time>`` folder; an existing folder is never reused."""
    root = Path(root)
    if not root.is_absolute():
        root = REPO / root
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    path = root / f"bench-{name}-{stamp}"
    suffix = 1
    while path.exists():
        path = root / f"bench-{name}-{stamp}-{suffix}"
        suffix += 1
    path.mkdir(parents=True)
    return path


def set_threads(threads: int) -> int:
    """Use ``threads`` intra-op threads (0: keep torch's default); returns the count in use.

    On a shared 2-core machine whose other core is busy, one thread can be several times faster
    than two (OpenMP regions wait for the descheduled thread); BENCHMARKS.md measures it.
    """
    import torch

    if threads > 0:
        torch.set_num_threads(threads)
    return torch.get_num_threads()


def quiet_lightning() -> None:
    """Hide Lightning's per-fit banners ("GPU available", tips) so that the logs show the results."""
    import logging

    for name in ("lightning.pytorch", "lightning.fabric", "lightning"):
        logging.getLogger(name).setLevel(logging.WARNING)


def log(message: str) -> None:
    """A progress line with the elapsed wall time and the load, flushed at once (for nohup logs)."""
    print(f"[{utc_now()} load {load_average()}] {message}", flush=True)


def write_summary(out: Path, summary: dict[str, Any]) -> Path:
    """Write ``summary.json`` in ``out`` and print it."""
    path = out / "summary.json"
    path.write_text(json.dumps(summary, indent=2, default=str))
    print(json.dumps(summary, indent=2, default=str), flush=True)
    return path


def read_summaries(runs: list[str]) -> list[dict[str, Any]]:
    """The ``summary.json`` of each earlier run folder (what :func:`write_summary` wrote there), or a summary file
    itself (as kept in ``benchmarks/results/``)."""
    paths = [Path(run) if Path(run).is_file() else Path(run) / "summary.json" for run in runs]
    return [json.loads(path.read_text()) for path in paths]


def ci(entry: dict[str, Any] | None, digits: int = 3) -> str:
    """``0.712 (0.65–0.77)`` from an ``{"estimate", "low", "high"}`` metric entry."""
    if not entry or entry.get("estimate") is None:
        return "n/a"
    est, low, high = entry["estimate"], entry.get("low"), entry.get("high")
    if low is None or high is None:
        return f"{est:.{digits}f}"
    return f"{est:.{digits}f} ({low:.{digits}f}–{high:.{digits}f})"


class Stopwatch:
    """``with Stopwatch() as sw: ...; sw.seconds``."""

    def __enter__(self) -> Stopwatch:
        self.start = time.perf_counter()
        self.seconds = float("nan")
        return self

    def __exit__(self, *exc: object) -> None:
        self.seconds = time.perf_counter() - self.start
