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
      model_epochs<K>.pt     the previous model.pt, kept when extending a run changed the best epoch
      operating_point.json   threshold chosen on the validation split (binary tasks)
      training.json          best epoch, epochs run, wall time, hardware, backend
      plan.json              choices derived from the training data (detect: anchors, sizes)
      metrics.json           {split: metrics with CIs}, one entry per evaluation
      predictions_<split>.csv
      outputs_<key>/         file outputs of one evaluation (predicted/true masks), named by the engine
      figures/               PNG figures (ROC, confusion matrix, calibration, box overlays ...)
      report.html            the HTML study report (osteon report)
      model_card.md          the model card (osteon report)
      logs/                  CSV (and TensorBoard) logs
      export/                model.onnx, model.int8.onnx, model.json (osteon export)
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from osteon.data.manifest import STRING_COLUMNS
from osteon.errors import RunDirError

if TYPE_CHECKING:
    import pandas as pd

    from osteon.data.manifest import Manifest


@dataclass(frozen=True)
class RunDir:
    """Paths inside one run directory."""

    path: Path

    @classmethod
    def check_new(cls, path: str | Path) -> None:
        """Raise :class:`RunDirError` when ``path`` exists and is not empty (runs are never overwritten)."""
        path = Path(path)
        if path.exists() and (not path.is_dir() or any(path.iterdir())):
            raise RunDirError(
                f"{path} already holds a run. Fix: continue it with `osteon train --resume {path}`, "
                "or choose another --out."
            )

    @classmethod
    def create(cls, path: str | Path) -> RunDir:
        """Make a new run directory; refuses to reuse a non-empty one (runs are never overwritten).

        Raises:
            RunDirError: the directory exists and is not empty.
        """
        cls.check_new(path)
        path = Path(path)
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
    def training(self) -> Path:
        return self.path / "training.json"

    @property
    def plan(self) -> Path:
        return self.path / "plan.json"

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
        """``predictions_<key>.csv``: one row per image of one evaluation (``key`` = split or dataset-split)."""
        return self.path / f"predictions_{key}.csv"

    def outputs(self, key: str) -> Path:
        """``outputs_<key>/``: file outputs (masks) of the evaluation whose table is ``predictions(key)``."""
        return self.path / f"outputs_{key}"

    def figure_dir(self, name: str) -> Path:
        """A sub-folder of ``figures/`` (e.g. ``overlays_test``)."""
        return self.figures / name

    def load_manifest(self) -> Manifest:
        """The run's own ``manifest.csv``, without repeating the data warnings shown when the run was prepared."""
        import warnings

        from osteon.data.manifest import Manifest, MissingPatientIdWarning

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", MissingPatientIdWarning)
            return Manifest.load(self.manifest)

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

    # -- reports and predictions (added for the report layer) -----------------------------------
    @property
    def report_html(self) -> Path:
        """``report.html``: the self-contained study report (``osteon report``)."""
        return self.path / "report.html"

    @property
    def model_card(self) -> Path:
        """``model_card.md``: the model card written next to the report."""
        return self.path / "model_card.md"

    @property
    def metrics_log(self) -> Path:
        """``logs/metrics.csv``: per-step losses and validation score (Lightning's CSVLogger in ``logs``)."""
        return self.logs / "metrics.csv"

    def read_predictions(self, key: str) -> pd.DataFrame:
        """``predictions_<key>.csv`` with one set of dtypes, whoever reads it.

        Identifiers and paths (``image``, ``patient_id``, ``study_id``, ``split``, ``*_file``) and text or JSON
        columns (``truth``, ``prediction``, ``pred_boxes`` ...: :data:`PREDICTION_TEXT_COLUMNS`) are pandas
        ``string``; every other column keeps pandas' inference (numbers are numeric). ``error`` is ``""`` for
        rows that were read. ``truth`` stays text for every task (class names such as ``"0"`` must not become
        numbers); convert it with ``pd.to_numeric`` where it is a value.

        Raises:
            RunDirError: the run has no predictions for ``key``.
        """
        import pandas as pd

        path = self.predictions(key)
        if not path.is_file():
            raise RunDirError(
                f"{self.path} has no {path.name}: the run was not evaluated on {key!r}. "
                f"Fix: run `osteon evaluate {self.path} --split {key}`."
            )
        header = pd.read_csv(path, nrows=0).columns
        text = [c for c in header if c in PREDICTION_TEXT_COLUMNS or str(c).endswith("_file")]
        frame = pd.read_csv(path, dtype=dict.fromkeys(text, "string"), keep_default_na=True)
        if "error" in frame:
            frame["error"] = frame["error"].fillna("")
        return frame

    # -- ONNX export (osteon export) ------------------------------------------------------------
    @property
    def export_dir(self) -> Path:
        """``export/``: models for other runtimes, written by ``osteon export``."""
        return self.path / "export"

    @property
    def onnx_model(self) -> Path:
        """``export/model.onnx``: the fp32 ONNX graph (input ``image``, optional ``covariates``)."""
        return self.export_dir / "model.onnx"

    @property
    def onnx_int8_model(self) -> Path:
        """``export/model.int8.onnx``: the int8 graph (static, calibrated on validation), kept only when accepted."""
        return self.export_dir / "model.int8.onnx"

    @property
    def onnx_info(self) -> Path:
        """``export/model.json``: preprocessing, task, inputs/outputs, parity and quantisation report."""
        return self.export_dir / "model.json"


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


#: Columns of a predictions table that are text (ids, paths, class names, JSON boxes), never numbers.
PREDICTION_TEXT_COLUMNS = frozenset({*STRING_COLUMNS, "truth", "prediction", "pred_boxes", "error"})
