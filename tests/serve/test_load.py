"""A bounded load test on loopback: 50 concurrent uploads to a live uvicorn server, all answered 200.

Latency percentiles are printed (``-s`` shows them), never asserted; ``benchmarks/serve_load.py`` records them.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("fastapi", reason="needs the `serve` extra: pip install 'osteon[serve]'")
pytest.importorskip("uvicorn", reason="needs the `serve` extra: pip install 'osteon[serve]'")
httpx = pytest.importorskip("httpx", reason="needs httpx (FastAPI's TestClient uses it)")

from osteon.serve import create_app  # noqa: E402
from osteon.serve.service import ModelService  # noqa: E402

from ._helpers import LiveServer  # noqa: E402

REQUESTS = 50


def test_fifty_concurrent_requests_all_succeed(trained_classifier: Path, phantom_image: Path) -> None:
    content = phantom_image.read_bytes()
    with LiveServer(create_app(ModelService(trained_classifier))) as server:

        def one(_: int) -> tuple[int, float]:
            start = time.perf_counter()
            response = httpx.post(
                f"{server.url}/v1/predict",
                params={"display": "false"},
                files={"file": ("x", content, "application/octet-stream")},
                timeout=120,
            )
            return response.status_code, time.perf_counter() - start

        with ThreadPoolExecutor(max_workers=REQUESTS) as pool:
            results = list(pool.map(one, range(REQUESTS)))
    codes = [code for code, _ in results]
    latencies = np.array([seconds for _, seconds in results]) * 1000
    p50, p95, p99 = np.percentile(latencies, [50, 95, 99])
    print(f"\n{REQUESTS} concurrent requests: p50 {p50:.0f} ms, p95 {p95:.0f} ms, p99 {p99:.0f} ms")
    assert codes == [200] * REQUESTS
