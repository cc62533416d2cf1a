"""Preparing a run: the Manifest, its split, the task state; validated before the run directory is made."""

from __future__ import annotations

import warnings
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from osteon.data.adapters import load_dataset
from osteon.data.covariates import CovariateEncoder
from osteon.data.manifest import SPLITS, Manifest
from osteon.data.splits import apply_split_file, make_splits, save_split_file
from osteon.data.transforms import Preprocessing
from osteon.engine.config import TrainConfig
from osteon.engine.rundir import RunDir
from osteon.errors import ConfigError, SplitLeakError
from osteon.tasks import TASKS, TaskState


@dataclass
class SplitDecision:
    """Which split was used and why (written to state.json and the report)."""

    source: str  # "dataset" | "file" | "generated"
    reason: str


def resolve_split(
    manifest: Manifest, cfg: TrainConfig, target: str, *, stratify_by_target: bool
) -> tuple[Manifest, SplitDecision]:
    """Use the dataset's own split when it covers every image and class; else a seeded grouped split.

    Order: an explicit ``split_file`` wins; then the dataset's split when every row has one, train
    and val are non-empty and (``stratify_by_target``) train holds every class; otherwise a new split grouped
    by patient and duplicate content, stratified by the target when ``stratify_by_target``
    (``osteon.data.splits.make_splits``). A given split (file or dataset) that puts one patient in two splits
    is refused unless ``cfg.allow_patient_overlap``.

    Raises:
        SplitLeakError: a patient has images in two splits of the given split.
    """
    if cfg.split_file:
        given = apply_split_file(manifest, Path(cfg.split_file))
        reason = f"from {cfg.split_file}"
        return given, SplitDecision(
            "file", reason + _check_patient_overlap(given, cfg, f"--split-file {cfg.split_file}")
        )
    frame = manifest.frame
    problem = _split_problem(frame, target, stratify_by_target)
    if problem is None:
        note = _check_patient_overlap(manifest, cfg, "the dataset's split column")
        return manifest, SplitDecision("dataset", "the dataset's own split covers every image and class" + note)
    stratify = target if stratify_by_target else None
    splits = make_splits(manifest, val=cfg.val_fraction, test=cfg.test_fraction, stratify=stratify, seed=cfg.seed)
    reason = (
        f"generated (seed {cfg.seed}, val {cfg.val_fraction}, test {cfg.test_fraction}, grouped by patient and "
        f"duplicate content, stratified by {stratify}) because {problem}"
    )
    warnings.warn(f"{manifest.name}: split {reason}.", stacklevel=2)
    return manifest.with_columns(split=splits.to_numpy()), SplitDecision("generated", reason)


def _check_patient_overlap(manifest: Manifest, cfg: TrainConfig, source: str) -> str:
    """Refuse a split that puts one patient in two splits (unless allowed); returns a note for the decision."""
    frame = manifest.frame
    if "patient_id" not in frame or "split" not in frame:
        return ""
    known = frame[frame["patient_id"].notna() & frame["split"].notna()]
    counts = known.groupby(known["patient_id"].astype(str))["split"].nunique()
    leaking = sorted(counts[counts > 1].index)
    if not leaking:
        return ""
    where = {p: sorted(known.loc[known["patient_id"].astype(str) == p, "split"].unique()) for p in leaking[:5]}
    listed = "; ".join(f"{p} in {'/'.join(s)}" for p, s in where.items())
    more = f" and {len(leaking) - 5} more" if len(leaking) > 5 else ""
    message = (
        f"{manifest.name}: {len(leaking)} patient(s) have images in two splits of {source} ({listed}{more}), so "
        "test results would be optimistic."
    )
    if not cfg.allow_patient_overlap:
        raise SplitLeakError(
            message + " Fix: re-split by patient (`osteon data split`, or leave the split out and Osteon makes one), "
            "or pass --allow-patient-overlap to train anyway."
        )
    warnings.warn(message + " Training anyway (--allow-patient-overlap).", stacklevel=3)
    return f"; {len(leaking)} patient(s) in two splits, allowed by --allow-patient-overlap"


def _split_problem(frame: pd.DataFrame, target: str, stratify_by_target: bool) -> str | None:
    if "split" not in frame or frame["split"].isna().all():
        return "the dataset has no split"
    labelled = frame[frame[target].notna()]
    missing = int(labelled["split"].isna().sum())
    if missing:
        return f"{missing} labelled images have no split"
    for name in ("train", "val"):
        if not (labelled["split"] == name).any():
            return f"its split has no {name!r} part"
    if stratify_by_target:
        all_classes = set(labelled[target].astype(str))
        train_classes = set(labelled.loc[labelled["split"] == "train", target].astype(str))
        if all_classes - train_classes:
            return f"classes {sorted(all_classes - train_classes)} are missing from its train part"
    return None


def load_manifest(cfg: TrainConfig) -> Manifest:
    """The Manifest of ``cfg.data`` (format detected unless ``cfg.format`` is given).

    The adapter options set in the config (``image_column``, ``label_column``, ``patient_column``,
    ``image_template`` ... see :meth:`TrainConfig.dataset_options`) are passed to the adapter, which refuses
    one its format does not take.
    """
    return load_dataset(cfg.data, format=cfg.format, **cfg.dataset_options())


def check_splits_present(manifest: Manifest) -> None:
    counts = {s: int((manifest.frame["split"] == s).sum()) for s in SPLITS}
    if counts["train"] == 0 or counts["val"] == 0:
        raise ConfigError(
            f"{manifest.name}: the split has {counts}; training needs train and val images. "
            "Fix: lower --val-fraction/--test-fraction or add data."
        )


def excluded_rows(frame: pd.DataFrame, rows: np.ndarray, reason: str | list[str]) -> pd.DataFrame:
    """Rows left out, with the reason, for ``excluded.csv``."""
    out = frame.iloc[rows][["image"]].copy()
    out["reason"] = reason
    return out


@dataclass
class PreparedRun:
    """Everything a run needs before training, validated, not yet on disk."""

    cfg: TrainConfig
    manifest: Manifest
    state: TaskState
    decision: SplitDecision
    preprocessing: Preprocessing
    covariates: CovariateEncoder
    channels_reason: str = ""  # why the input is grey or RGB (osteon.data.channels)
    pretrained: dict[str, Any] | None = None  # provenance of a self-supervised backbone (osteon.models.pretrained)

    def state_record(self) -> dict[str, Any]:
        """The content of ``state.json``."""
        record = {
            "task": asdict(self.state),
            "preprocessing": self.preprocessing.to_dict(),
            "covariates": self.covariates.to_dict(),
            "split": asdict(self.decision),
            "dataset": {"name": self.manifest.name, "path": str(Path(self.cfg.data).resolve())},
        }
        if self.channels_reason:
            record["input_channels"] = {"channels": self.preprocessing.channels, "reason": self.channels_reason}
        if self.pretrained:
            record["pretrained"] = self.pretrained
        return record


def prepare(cfg: TrainConfig) -> PreparedRun:
    """Load the data, set up the task, resolve the split: every check that can fail, before any file is written.

    Raises:
        ConfigError: unknown task, the config does not fit the data (bad targets, too few classes, a split
            that leaks patients ...).
    """
    if cfg.task not in TASKS:
        raise ConfigError(f"task={cfg.task!r} is not available yet; available: {', '.join(TASKS.names())}.")
    manifest = load_manifest(cfg)
    task_cls = TASKS.get(cfg.task)
    state = task_cls.setup(manifest, target=cfg.target, positive_class=cfg.positive_class, loss=cfg.loss)
    manifest, decision = resolve_split(manifest, cfg, state.target, stratify_by_target=task_cls.stratify_by_target)
    check_splits_present(manifest)
    if task_cls.setup_on_train:  # target statistics (e.g. a regression's mean/std) from the train split only
        state = task_cls.setup(manifest.split("train"), target=state.target, positive_class=None, loss=state.loss)
    state = task_cls.configure(state, cfg)
    state = task_cls.plan(state, manifest, cfg)
    encoder = CovariateEncoder.fit(manifest.split("train").frame, cfg.covariates)
    channels = _input_channels(task_cls, manifest, cfg)
    if channels.channels != 1:  # grey runs keep the state they always had
        state.extra.update(in_chans=channels.channels, channels_reason=channels.reason)
    prep = Preprocessing(image_size=cfg.image_size, channels=channels.channels, volume=task_cls.volume_input)
    pretrained = _pretrained_record(task_cls(state), cfg, encoder.dim)
    return PreparedRun(cfg, manifest, state, decision, prep, encoder, channels.reason, pretrained)


def _pretrained_record(task: Any, cfg: TrainConfig, covariate_dim: int) -> dict[str, Any] | None:
    """Provenance of the backbone file ``--pretrained`` names (``None`` for none, 'hub' or a plain weights file).

    The model is built once here, so a backbone of another architecture or channel count is refused before the
    run directory is made.
    """
    from osteon.models.pretrained import backbone_source

    source = backbone_source(cfg.pretrained)
    if source is None:
        return None
    task.build_model(model=cfg.model, pretrained=cfg.pretrained, covariate_dim=covariate_dim, dropout=cfg.dropout)
    return source.record()


def _input_channels(task_cls: Any, manifest: Manifest, cfg: TrainConfig) -> Any:
    """Grey or RGB input from the training images (``cfg.channels``); grey for tasks without colour models."""
    from osteon.data.channels import ChannelChoice, choose_channels

    mode = cfg.channels
    if not task_cls.colour_input:
        if mode == "rgb":
            raise ConfigError(f"task {cfg.task!r} takes grey images only. Fix: drop --channels rgb.")
        return ChannelChoice(1, f"grey: task {cfg.task!r} takes grey images")
    train = manifest.split("train")
    return choose_channels(train.paths_of(np.arange(len(train))), mode, seed=cfg.seed)


def prepare_run(cfg: TrainConfig) -> RunDir:
    """Validate everything (:func:`prepare`), then create ``cfg.out`` and write what training and resume need.

    Files: ``config.yaml``, ``manifest.csv`` (with the split), ``splits.csv``, ``state.json`` and, when the
    task planned from the data, ``plan.json``. Nothing is created when a check fails.

    Raises:
        RunDirError: ``cfg.out`` already holds a run.
        ConfigError: see :func:`prepare`.
    """
    RunDir.check_new(cfg.out)
    prepared = prepare(cfg)
    run = RunDir.create(cfg.out)
    cfg.save(run.config)
    prepared.manifest.save(run.manifest)
    save_split_file(prepared.manifest, prepared.manifest.frame["split"], run.splits)
    if prepared.state.extra.get("plan"):
        run.write_json(run.plan, prepared.state.extra["plan"])
    run.write_json(run.state, prepared.state_record())
    return run
