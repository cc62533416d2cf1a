"""The model behind the server: a :class:`~osteon.engine.Predictor` (any backend), its card and its CAMs."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import numpy as np

import osteon
from osteon.tasks.predictions import Prediction


class ModelService:
    """Predict, explain and describe one run.

    Args:
        run: The run directory.
        backend: ``torch``, ``onnx`` or ``onnx-int8`` (see :meth:`Predictor.from_run`).
        threads: Intra-op threads of the model (ONNX Runtime; torch uses its global setting).

    CAMs need gradients and hook the model's layers, so they use a PyTorch model of their own (loaded on the
    first CAM request): predictions running at the same time never pass through those hooks.
    """

    def __init__(self, run: str | Path, *, backend: str = "torch", threads: int | None = None) -> None:
        from osteon.engine import Predictor

        self.predictor = Predictor.from_run(run, backend=backend, threads=threads)
        self.backend = backend
        self._cam_predictor: Any = None
        self._cam_lock = threading.Lock()

    @property
    def operating_point(self) -> dict[str, Any] | None:
        return self.predictor.operating_point

    def predict(self, path: Path) -> Prediction:
        """The typed prediction of one image file (original pixels)."""
        return self.predictor.predict_image(path)

    def explain(self, path: Path) -> tuple[np.ndarray, str, float | None]:
        """``(map (H, W) in [0, 1] on the original grid, explained target, its score)``.

        Raises:
            ConfigError: the task has no CAM support.
        """
        from osteon.explain import explain_image

        with self._cam_lock:  # Grad-CAM hooks the model's layers: one at a time
            if self._cam_predictor is None:
                from osteon.engine import Predictor

                self._cam_predictor = Predictor.from_run(self.predictor.run.path)  # type: ignore[union-attr]
            explanation = explain_image(self._cam_predictor, path)
        score = getattr(explanation, "score", None)
        return explanation.map, str(explanation.target), float(score) if score is not None else None

    def card(self) -> dict[str, Any]:
        """Task, classes, preprocessing, headline metrics with CIs, operating point, versions."""
        predictor = self.predictor
        meta = predictor.meta
        state = meta["task"]
        run = predictor.run
        card: dict[str, Any] = {
            "name": run.path.name if run is not None else None,
            "task": state["name"],
            "target": state.get("target"),
            "classes": list(state.get("class_names") or []),
            "positive_class": state.get("positive_class"),
            "multilabel": bool(state.get("multilabel")),
            "model": meta.get("config", {}).get("model"),
            "backend": self.backend,
            "preprocessing": meta.get("preprocessing"),
            "covariates": list((meta.get("covariates") or {}).get("columns") or []),
            "best_epoch": meta.get("best_epoch"),
            "selected_by": meta.get("selected_by"),
            "operating_point": self.operating_point,
            "metrics": {},
            "version": {"osteon": osteon.__version__, **(meta.get("versions") or {})},
        }
        if run is not None and run.metrics.is_file():
            card["metrics"] = {key: headline(values) for key, values in run.read_json(run.metrics).items()}
        return card


def headline(metrics: dict[str, Any]) -> dict[str, Any]:
    """The top-level numbers of one evaluation: scalars and ``{estimate, low, high}`` intervals."""
    out: dict[str, Any] = {}
    for key, value in metrics.items():
        if isinstance(value, bool):
            continue
        if isinstance(value, int | float):
            out[key] = value
        elif isinstance(value, dict) and "estimate" in value:
            out[key] = {k: value.get(k) for k in ("estimate", "low", "high")}
    return out
