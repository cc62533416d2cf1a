"""``multitask``: several targets per image from one backbone — one head per target, per-target losses with weights,
per-target metrics with CIs.

``--target "fractured,body_part:0.5,age"`` names the Manifest columns (``:w`` a loss weight, default 1). Each target
gets an inner image-level task chosen from its values — ``regress`` for non-integer numbers, ``grade`` for ≥ 3
integer grades, else ``classify`` — which reads, loses, scores and evaluates it; the heads are slices of one
:class:`~osteon.models.ImageModel` output. A row needs at least one target (the others are masked out of the loss).
The first target is the primary one (the split is stratified by it). Regression heads keep the mean/std of the
whole training Manifest given to set-up (the engine's train-only set-up applies to the primary target's task).
The validation score is the mean of the heads' scores (AUC, QWK, −MAE).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from osteon.data.datasets import ImageDataset
from osteon.data.manifest import Manifest
from osteon.errors import ConfigError
from osteon.tasks._image import identity_frame
from osteon.tasks._targets import as_label_strings, sorted_classes
from osteon.tasks.base import (
    TASKS,
    ClassPrediction,
    Monitor,
    OutputWriter,
    Prediction,
    TaskBase,
    TaskState,
    make_model_for,
)


def parse_targets(text: str | None) -> list[tuple[str, float]]:
    """``"a,b:0.5"`` → ``[("a", 1.0), ("b", 0.5)]``."""
    if not text:
        raise ConfigError("multitask needs --target with several columns, e.g. --target 'fractured,body_part:0.5'.")
    out = []
    for part in str(text).split(","):
        name, _, weight = part.strip().partition(":")
        try:
            out.append((name.strip(), float(weight) if weight else 1.0))
        except ValueError:
            raise ConfigError(f"target weight {weight!r} of {name!r} is not a number (use 'column:0.5').") from None
    if len(out) < 2:
        raise ConfigError(f"multitask needs at least two target columns; got {text!r}. Use the single task instead.")
    return out


def head_kind(values: pd.Series) -> str:
    """``regress`` for numbers that are not all integers, ``grade`` for ≥ 3 integer grades, else ``classify``."""
    numeric = pd.to_numeric(values.dropna(), errors="coerce")
    if len(numeric) and numeric.notna().all() and not np.allclose(numeric, np.round(numeric)):
        return "regress"
    names = sorted_classes(as_label_strings(values))
    return "grade" if len(names) >= 3 and all(n.lstrip("-").isdigit() for n in names) else "classify"


@TASKS.register("multitask")
class MultiTask(TaskBase):
    """One backbone, one head per target; see the module docstring."""

    name: ClassVar[str] = "multitask"
    monitor: ClassVar[Monitor] = Monitor("mean score", "max")
    stratify_by_target: ClassVar[bool] = True
    colour_input: ClassVar[bool] = True
    prediction_type: ClassVar[type | None] = ClassPrediction

    def __init__(self, state: TaskState) -> None:
        super().__init__(state)
        self.heads: list[tuple[str, float, Any]] = []
        for head in state.extra["heads"]:
            inner = TaskState(**head["state"])
            inner.extra.setdefault("in_chans", state.extra.get("in_chans", 1))
            self.heads.append((head["name"], float(head["weight"]), TASKS.get(inner.name)(inner)))
        widths = np.cumsum([0, *(t.num_outputs for _, _, t in self.heads)])
        self.slices = [slice(int(a), int(b)) for a, b in itertools.pairwise(widths)]

    @classmethod
    def setup(
        cls, manifest: Manifest, *, target: str | None, positive_class: str | None, loss: str | None
    ) -> TaskState:
        heads = []
        for column, weight in parse_targets(target):
            if column not in manifest.frame or manifest.frame[column].isna().all():
                raise ConfigError(f"{manifest.name}: target column {column!r} is missing or empty.")
            kind = head_kind(manifest.frame[column])
            inner = TASKS.get(kind).setup(manifest, target=column, positive_class=None, loss=None)
            heads.append({"name": column, "weight": weight, "state": vars(inner) | {"extra": dict(inner.extra)}})
        first = heads[0]["state"]
        return TaskState("multitask", first["target"], [], None, False, "", {"heads": heads, "targets": target})

    @property
    def num_outputs(self) -> int:
        return self.slices[-1].stop

    def build_model(self, *, model: str, pretrained: str | None, covariate_dim: int, dropout: float) -> nn.Module:
        return make_model_for(self, model=model, pretrained=pretrained, covariate_dim=covariate_dim, dropout=dropout)

    # -- targets ----------------------------------------------------------------------------------
    def targets(self, manifest: Manifest) -> np.ndarray:
        """``(N, T)`` float: class/grade index (-1 missing) or standardised value (nan missing) per head."""
        columns = []
        for name, _, task in self.heads:
            if name not in manifest.frame:
                columns.append(np.full(len(manifest), np.nan, dtype=np.float32))
                continue
            values = task.targets(manifest).astype(np.float32)
            if task.numeric_truth:
                columns.append(values)
            else:
                columns.append(np.where(values < 0, np.nan, values))
        return np.stack(columns, axis=1)

    def missing_targets(self, manifest: Manifest) -> np.ndarray:
        return np.isnan(self.targets(manifest)).all(axis=1)

    def make_dataset(
        self,
        manifest: Manifest,
        rows: np.ndarray,
        decoded: Any,
        *,
        covariates: np.ndarray | None,
        augment: Callable[[torch.Tensor], torch.Tensor] | None,
        prep: Any,
    ) -> Dataset:
        targets = self.targets(manifest)[rows]
        return ImageDataset(decoded.stack, targets, prep, covariates=covariates, augment=augment, indices=rows)

    # -- training ---------------------------------------------------------------------------------
    def training_loss(
        self, model: nn.Module, batch: dict[str, Any], class_weights: torch.Tensor | None
    ) -> torch.Tensor:
        outputs = model(batch["image"], batch.get("covariates"))
        targets = batch["target"]
        total = outputs.sum() * 0.0  # keeps the graph when a batch has none of a target
        for k, (_, weight, task) in enumerate(self.heads):
            known = torch.isfinite(targets[:, k])
            if known.any():
                truth = targets[known, k] if task.numeric_truth else targets[known, k].long()
                total = total + weight * task.loss(outputs[known][:, self.slices[k]], truth)
        return total

    def validation_records(self, model: nn.Module, batch: dict[str, Any]) -> list[Any]:
        outputs = model(batch["image"], batch.get("covariates"))
        scores = [task.scores(outputs[:, self.slices[k]]) for k, (_, _, task) in enumerate(self.heads)]
        targets = batch["target"].cpu().numpy()
        return [([s[i] for s in scores], targets[i]) for i in range(len(targets))]

    def monitor_records(self, records: list[Any]) -> float:
        values = []
        for k, (_, _, task) in enumerate(self.heads):
            known = [r for r in records if np.isfinite(r[1][k])]
            if not known:
                continue
            scores = np.stack([r[0][k] for r in known])
            truth = np.array([r[1][k] for r in known])
            values.append(task.monitor_score(scores, truth if task.numeric_truth else truth.astype(np.int64)))
        finite = [v for v in values if np.isfinite(v)]
        return float(np.mean(finite)) if finite else float("nan")

    # -- results ----------------------------------------------------------------------------------
    def predict(self, outputs: torch.Tensor, **kwargs: Any) -> list[Prediction]:
        """The first target's predictions (``predict_rows`` gives every head's)."""
        return self.heads[0][2].predict(outputs[:, self.slices[0]])

    def predict_image(
        self, model: nn.Module, path: str | Path, *, prep: Any, covariates: torch.Tensor | None = None
    ) -> Prediction:
        return self.heads[0][2].predict_image(_Head(model, self.slices[0]), path, prep=prep, covariates=covariates)

    @torch.inference_mode()
    def predict_rows(
        self,
        model: nn.Module,
        manifest: Manifest,
        dataset: Dataset,
        *,
        batch_size: int = 32,
        outputs: OutputWriter | None = None,
    ) -> pd.DataFrame:
        """Identifiers, ``truth`` (the targets that are known, ``name=value|...``) and per head ``<name>.truth``
        and the head's own columns prefixed ``<name>.`` (``fractured.prob_1``, ``body_part.prediction`` ...)."""
        was_training = model.training
        model.eval()
        chunks = [model(b["image"], b.get("covariates")) for b in DataLoader(dataset, batch_size=batch_size)]
        model.train(was_training)
        logits = torch.cat(chunks) if chunks else torch.zeros((0, self.num_outputs))
        rows = dataset.indices  # type: ignore[attr-defined]
        frame = identity_frame(manifest, rows, TaskState("x", "\0", []), numeric=False)
        parts = [frame]
        truths = []
        for k, (name, _, task) in enumerate(self.heads):
            own = task.prediction_frame(task.scores(logits[:, self.slices[k]])).add_prefix(f"{name}.")
            if name in manifest.frame:
                truth = identity_frame(manifest, rows, task.state, numeric=task.numeric_truth)["truth"]
                own.insert(0, f"{name}.truth", truth.to_numpy())
                truths.append((f"{name}=" + truth.astype("string")).fillna(""))
            parts.append(own.reset_index(drop=True))
        table = pd.concat(parts, axis=1)
        if truths:
            joined = pd.concat(truths, axis=1).apply(lambda r: "|".join(v for v in r if v), axis=1)
            table.insert(len(frame.columns), "truth", joined.replace("", pd.NA).astype("string").to_numpy())
        return table

    def _head_frame(self, frame: pd.DataFrame, name: str) -> pd.DataFrame:
        prefix = f"{name}."
        own = frame[[c for c in frame.columns if c.startswith(prefix)]].rename(columns=lambda c: c[len(prefix) :])
        ids = frame[[c for c in ("image", "patient_id", "study_id", "split") if c in frame]]
        head = pd.concat([ids, own], axis=1)
        return head[head["truth"].notna()] if "truth" in head else head.iloc[:0]

    def choose_operating_point(self, frame: pd.DataFrame) -> dict[str, Any] | None:
        points = {}
        for name, _, task in self.heads:
            head = self._head_frame(frame, name)
            if len(head):
                point = task.choose_operating_point(head)
                if point is not None:
                    points[name] = point
        return {"per_target": points} if points else None

    def evaluate(
        self, frame: pd.DataFrame, *, operating_point: dict[str, Any] | None, n_resamples: int, seed: int
    ) -> dict[str, Any]:
        """``{"per_target": {name: the head task's report (with CIs)}, "weights": {name: w}}``."""
        points = (operating_point or {}).get("per_target", {})
        reports = {}
        for name, _, task in self.heads:
            head = self._head_frame(frame, name)
            if len(head) and head["truth"].notna().any():
                report = task.evaluate(head, operating_point=points.get(name), n_resamples=n_resamples, seed=seed)
                reports[name] = {"kind": task.name, **report}
        return {"task": "multitask", "per_target": reports, "weights": {n: w for n, w, _ in self.heads}}


class _Head(nn.Module):
    """One head's slice of a multi-task model's output (so an inner task can run it as its own model)."""

    def __init__(self, model: nn.Module, part: slice) -> None:
        super().__init__()
        self.model = model
        self.part = part

    def forward(self, x: torch.Tensor, covariates: torch.Tensor | None = None) -> torch.Tensor:
        return self.model(x, covariates)[:, self.part]
