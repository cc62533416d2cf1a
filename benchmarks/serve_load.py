"""Load on the REST API: N concurrent ``POST /v1/predict`` on loopback against a live uvicorn server.

Each request uploads the same FracAtlas radiograph (JPEG) without the display image (``display=false``), so the
figures are decode + preprocessing + model + JSON. Reported: errors, latency percentiles and requests/s, per
backend. The server runs in this process (uvicorn in a thread, ``max_concurrent`` predictions at once).

Usage::

    .venv/bin/python benchmarks/serve_load.py --run runs/bench-onnx-fracatlas --requests 50 --backends torch,onnx
"""

from __future__ import annotations

import argparse
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from _common import load_average, log, machine_info, new_out_dir, set_threads, write_summary

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "serve"))


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--run", required=True)
    p.add_argument("--requests", type=int, default=50)
    p.add_argument("--backends", default="torch,onnx,onnx-int8")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--out-root", default="runs")
    return p.parse_args()


def main() -> None:
    import httpx
    from _helpers import LiveServer  # tests/serve/_helpers.py: uvicorn in a thread

    from osteon.engine import RunDir
    from osteon.serve import ServeSettings, create_app
    from osteon.serve.service import ModelService

    args = parse_args()
    threads = set_threads(args.threads)
    out = new_out_dir("serve_load", args.out_root)
    run = RunDir.open(args.run)
    manifest = run.load_manifest()
    image = manifest.resolve(manifest.frame[manifest.frame["split"] == "test"]["image"].iloc[0])
    content = image.read_bytes()
    results = []
    for backend in args.backends.split(","):
        app = create_app(ModelService(run.path, backend=backend), ServeSettings(max_concurrent=2))
        with LiveServer(app) as server:

            def one(_: int, url: str = server.url) -> tuple[int, float]:
                start = time.perf_counter()
                response = httpx.post(
                    f"{url}/v1/predict",
                    params={"display": "false"},
                    files={"file": ("x", content, "application/octet-stream")},
                    timeout=600,
                )
                return response.status_code, time.perf_counter() - start

            one(0)  # warm-up
            start = time.perf_counter()
            with ThreadPoolExecutor(max_workers=args.requests) as pool:
                answers = list(pool.map(one, range(args.requests)))
            wall = time.perf_counter() - start
        latencies = np.array([s for _, s in answers]) * 1000
        p50, p95, p99 = np.percentile(latencies, [50, 95, 99])
        row = {
            "backend": backend,
            "requests": args.requests,
            "errors": sum(code != 200 for code, _ in answers),
            "p50_ms": round(float(p50)),
            "p95_ms": round(float(p95)),
            "p99_ms": round(float(p99)),
            "max_ms": round(float(latencies.max())),
            "requests_per_s": round(args.requests / wall, 2),
        }
        log(str(row))
        results.append(row)
    summary = {
        "machine": machine_info(),
        "load_after": load_average(),
        "run": str(run.path),
        "image": image.name,
        "image_bytes": len(content),
        "threads": threads,
        "results": results,
    }
    write_summary(out, summary)


if __name__ == "__main__":
    main()
