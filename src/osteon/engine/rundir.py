"""The run directory: the one artefact every later stage reads.

Layout::

    RUN/
      config.yaml            resolved TrainConfig
      state.json             task state, preprocessing, covariate encoder, split source
      manifest.csv           the Manifest used, with the split of every image
      splits.csv             image, split (reusable with --split-file)
      excluded.csv           rows left out of training and why (unreadable, no label)
      checkpoints/           Lightning checkpoints (last.ckpt for --resume, best.ckpt)
      model.pt               self-describing weights of the best epoch (Predictor.from_run)
      operating_point.json   threshold chosen on the validation split (binary tasks)
      metrics.json           {split: metrics with CIs}, one entry per evaluation
      predictions_<split>.csv
      figures/               PNG figures (ROC, confusion matrix, calibration ...)
      logs/                  CSV (and TensorBoard) logs
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from osteon.errors import RunDirError


@dataclass(frozen=True)
class RunDir:
    """Paths inside one run directory."""

    path: Path

    @classmethod
    def create(cls, path: str | Path) -> RunDir:
        """Make a new run directory; refuses to reuse a non-empty one (runs are never overwritten).

        Raises:
            RunDirError: the directory exists and is not empty.
        """
        path = Path(path)
        if path.exists() and any(path.iterdir()):
            raise RunDirError(
                f"{path} already holds a run. Fix: continue it with `osteon train --resume {path}`, "
                "or choose another --out."
            )
        path.mkdir(parents=True, exist_ok=True)
        return cls(path)

    @classmethod
    def open(cls, path: str | Path, *, need_model: bool = True) -> RunDir:
        """An existing run; ``need_model`` also requires the exported ``model.pt``.

        Raises:
            RunDirError: not a run directory, or training has not finished.
        """
        run = cls(Path(path))
        if not run.config.is_file():
            raise RunDirError(f"{path} is not an Osteon run directory (no config.yaml). Fix: pass the --out of a run.")
        if need_model and not run.model.is_file():
            hint = (
                " It has a last checkpoint: finish it with `osteon train --resume`."
                if run.last_checkpoint.is_file()
                else ""
            )
            raise RunDirError(f"{path} has no model.pt: training did not finish.{hint}")
        return run

    # -- files ----------------------------------------------------------------------------------
    @property
    def config(self) -> Path:
        return self.path / "config.yaml"

    @property
    def state(self) -> Path:
        return self.path / "state.json"

    @property
    def manifest(self) -> Path:
        return self.path / "manifest.csv"

    @property
    def splits(self) -> Path:
        return self.path / "splits.csv"

    @property
    def excluded(self) -> Path:
        return self.path / "excluded.csv"

    @property
    def checkpoints(self) -> Path:
        return self.path / "checkpoints"

    @property
    def last_checkpoint(self) -> Path:
        return self.checkpoints / "last.ckpt"

    @property
    def model(self) -> Path:
        return self.path / "model.pt"

    @property
    def operating_point(self) -> Path:
        return self.path / "operating_point.json"

    @property
    def metrics(self) -> Path:
        return self.path / "metrics.json"

    @property
    def figures(self) -> Path:
        return self.path / "figures"

    @property
    def logs(self) -> Path:
        return self.path / "logs"

    def predictions(self, key: str) -> Path:
        return self.path / f"predictions_{key}.csv"

    # -- JSON helpers ---------------------------------------------------------------------------
    def read_json(self, path: Path) -> dict[str, Any]:
        return json.loads(path.read_text()) if path.is_file() else {}

    def write_json(self, path: Path, values: dict[str, Any]) -> None:
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(json_safe(values), indent=2, default=_json_default))
        tmp.replace(path)  # atomic: a crash never leaves half a file

    def update_metrics(self, key: str, values: dict[str, Any]) -> None:
        """Add or replace one evaluation's entry in ``metrics.json`` (other entries are kept)."""
        merged = self.read_json(self.metrics)
        merged[key] = values
        self.write_json(self.metrics, merged)


def json_safe(value: Any) -> Any:
    """``nan``/``inf`` → ``None`` (JSON has no NaN; browsers and jq reject it), recursively."""
    import math

    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    return value


def _json_default(value: Any) -> Any:
    import numpy as np

    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return float(value)
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")
