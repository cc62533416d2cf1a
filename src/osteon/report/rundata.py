"""Everything a report reads, loaded once from a run directory (and nothing from anywhere else)."""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from osteon.data.manifest import Manifest
from osteon.engine.rundir import RunDir
from osteon.errors import RunDirError
from osteon.report.kinds import ReportKind, adapter_for

#: metrics.json keys of the run's own splits; any other key is an evaluation on another dataset.
OWN_SPLITS = ("test", "val", "train")


@dataclass
class RunData:
    """The files of one run, parsed.

    Attributes:
        run: The run directory.
        config: ``config.yaml`` as a dict.
        state: ``state.json`` (task state, preprocessing, covariates, split decision, dataset).
        manifest: ``manifest.csv`` (with the split of every image).
        excluded: ``excluded.csv`` (image, reason), empty when nothing was left out.
        metrics: ``metrics.json`` (``{key: evaluation}``).
        training: ``training.json`` (best epoch ...).
        model_meta: the ``meta`` of ``model.pt`` (versions, best epoch ...), ``{}`` without it.
        n_parameters: parameter count of ``model.pt``'s weights (0 without it).
        log: ``logs/metrics.csv`` (per-epoch losses and validation score), possibly empty.
        predictions: ``{key: predictions_<key>.csv}`` with an added ``case`` column (normalised absolute path).
    """

    run: RunDir
    config: dict[str, Any]
    state: dict[str, Any]
    manifest: Manifest
    excluded: pd.DataFrame
    metrics: dict[str, Any]
    training: dict[str, Any]
    model_meta: dict[str, Any]
    n_parameters: int
    log: pd.DataFrame
    predictions: dict[str, pd.DataFrame] = field(default_factory=dict)

    # -- loading --------------------------------------------------------------------------------
    @classmethod
    def load(cls, path: str | Path) -> RunData:
        """Read a run directory.

        Raises:
            RunDirError: not a run directory, or it has never been evaluated (no ``metrics.json``).
        """
        run = RunDir.open(path, need_model=False)
        metrics = run.read_json(run.metrics)
        if not metrics:
            raise RunDirError(
                f"{run.path} has no metrics.json: the run was never evaluated. "
                f"Fix: run `osteon evaluate {run.path} --split test` first."
            )
        config = yaml.safe_load(run.config.read_text()) or {}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # no patient ids: the run's own report says so
            manifest = (
                Manifest.load(run.manifest)
                if run.manifest.is_file()
                else Manifest(pd.DataFrame({"image": []}), run.path)
            )
        excluded = (
            pd.read_csv(run.excluded, dtype=str)
            if run.excluded.is_file()
            else pd.DataFrame(columns=["image", "reason"])
        )
        meta, n_parameters = _model_meta(run)
        data = cls(
            run=run,
            config=config,
            state=run.read_json(run.state),
            manifest=manifest,
            excluded=excluded,
            metrics=metrics,
            training=run.read_json(run.training),
            model_meta=meta,
            n_parameters=n_parameters,
            log=_read_log(run.metrics_log),
        )
        for key, result in metrics.items():
            table = predictions_key(result, key)
            if run.predictions(table).is_file():
                data.predictions[key] = with_cases(run.read_predictions(table), run.path)
        return data

    # -- derived --------------------------------------------------------------------------------
    @property
    def task(self) -> str:
        return str(self.state.get("task", {}).get("name") or self.config.get("task", ""))

    @property
    def task_state(self) -> dict[str, Any]:
        return dict(self.state.get("task", {}))

    @property
    def kind(self) -> ReportKind:
        """The report adapter of the run's task (:mod:`osteon.report.kinds`)."""
        return adapter_for(self.task)

    def monitor(self) -> tuple[str, str]:
        """``(name, direction)`` of the validation metric that chose the best epoch.

        ``training.json``'s ``monitor`` (``{"name", "direction"}``) when the engine recorded it, else the
        task adapter's (``AUC``/``max``, ``MAE``/``min`` ...).
        """
        recorded = self.training.get("monitor")
        if isinstance(recorded, dict) and recorded.get("name"):
            direction = str(recorded.get("direction") or self.kind.monitor_direction)
            return str(recorded["name"]), direction
        return self.kind.monitor_name, self.kind.monitor_direction

    def monitor_text(self) -> str:
        """The monitored metric for prose: ``validation AUC``, ``validation MAE (lower is better)``."""
        name, direction = self.monitor()
        return f"validation {name}" + (" (lower is better)" if direction == "min" else "")

    @property
    def name(self) -> str:
        return self.run.path.name

    @property
    def primary_key(self) -> str:
        """The evaluation the report is about: ``test`` when present, else the first entry."""
        return "test" if "test" in self.metrics else next(iter(self.metrics))

    @property
    def external_keys(self) -> list[str]:
        """Evaluations on other datasets (``osteon evaluate RUN --data OTHER``)."""
        return [k for k in self.metrics if k not in OWN_SPLITS]

    def manifest_with_cases(self) -> pd.DataFrame:
        """The Manifest table plus ``case`` (normalised absolute image path) for joining predictions."""
        frame = self.manifest.frame.copy()
        frame["case"] = [case_key(self.manifest.resolve(p)) for p in frame["image"]]
        return frame

    def dataset_relative(self, case: str) -> str:
        """A case's path relative to the dataset folder named in state.json (or its file name)."""
        root = self.state.get("dataset", {}).get("path")
        if root:
            folder = Path(root).parent if Path(root).suffix.lower() in (".csv", ".parquet", ".json") else Path(root)
            try:
                return os.path.relpath(case, folder)
            except ValueError:
                pass
        return Path(case).name

    def training_seconds(self) -> tuple[float | None, str]:
        """Training wall time and where it came from (``training.json`` or file times)."""
        for key in ("duration_s", "training_seconds", "wall_time_s"):
            if isinstance(self.training.get(key), int | float):
                return float(self.training[key]), f"training.json › {key}"
        if self.run.config.is_file() and self.run.model.is_file():
            seconds = self.run.model.stat().st_mtime - self.run.config.stat().st_mtime
            return max(0.0, seconds), "file times (config.yaml → model.pt), approximate"
        return None, "not recorded"

    def created(self) -> str:
        """When the run started (config.yaml's modification time, UTC)."""
        when = datetime.fromtimestamp(self.run.config.stat().st_mtime, tz=UTC)
        return when.strftime("%Y-%m-%d %H:%M UTC")


def case_key(path: str | os.PathLike[str]) -> str:
    """The identity of an image file across runs: its normalised absolute path."""
    return os.path.normpath(os.path.abspath(os.fspath(path)))


def predictions_key(result: dict[str, Any], key: str) -> str:
    """The key of an evaluation's predictions table (``predictions_<key>.csv``), from its metrics.json entry."""
    name = result.get("predictions_file")
    return Path(str(name)).stem.removeprefix("predictions_") if name else key


def with_cases(frame: pd.DataFrame, run_path: Path) -> pd.DataFrame:
    """A predictions table (:meth:`RunDir.read_predictions`) plus ``case``, the normalised absolute image path.

    Image paths in the table were written relative to the working directory of the evaluation (or
    absolute); a relative path that does not exist from here is tried relative to the run directory.
    """
    cases = []
    for value in frame["image"].astype(str):
        candidate = Path(value)
        if not candidate.is_absolute() and not candidate.exists() and (run_path / candidate).exists():
            candidate = run_path / candidate
        cases.append(case_key(candidate))
    return frame.assign(case=cases)


def usable(frame: pd.DataFrame) -> pd.DataFrame:
    """Rows that were read and have a reference value."""
    keep = frame["truth"].notna() if "truth" in frame else pd.Series(False, index=frame.index)
    if "error" in frame:
        keep &= frame["error"].fillna("") == ""
    return frame[keep].reset_index(drop=True)


def _model_meta(run: RunDir) -> tuple[dict[str, Any], int]:
    if not run.model.is_file():
        return {}, 0
    from osteon.engine.checkpoint import load_model_file

    try:
        payload = load_model_file(run.model)
    except Exception:  # an unreadable model file is reported as missing metadata, not a crash
        return {}, 0
    n = sum(int(t.numel()) for k, t in payload["state_dict"].items() if "running_" not in k and "num_batches" not in k)
    return dict(payload.get("meta", {})), n


def _read_log(path: Path) -> pd.DataFrame:
    if not path.is_file():
        return pd.DataFrame()
    try:
        return pd.read_csv(path)
    except (pd.errors.EmptyDataError, pd.errors.ParserError):
        return pd.DataFrame()
