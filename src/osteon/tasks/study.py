"""Study-level tasks: several views per study (``multiview``) and both sides of a patient (``bilateral``).

A study is a kind of input, not a new kind of label: the label is read, lost and scored by an inner image-level
task — ``grade`` (ordinal, CORN) when the target holds ≥ 3 integer grades or ``loss: corn``, else ``classify`` — and
these tasks own only the grouping of Manifest rows into items, the batches and the wrapper model
(:mod:`osteon.models.study`). The engine sees the usual Task hooks; it never knows that an item holds several images.

* ``multiview``: rows grouped by ``study_id`` (else ``patient_id``); one slot per view (the Manifest's ``view``
  values seen in training, most frequent first); a missing view is an empty slot; the study label is the positive
  class when any image has it (binary), the highest grade (grade), else the first image's. One prediction per study.
* ``bilateral``: rows grouped by ``patient_id``, slot 0 the left side and slot 1 the right (``laterality`` L/R),
  the right image mirrored onto the left; one label and one prediction per side (image), each side compared with the
  other by a Siamese network. Evaluation is per image with patient-level CIs.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from osteon.data.manifest import Manifest
from osteon.errors import ConfigError
from osteon.tasks._targets import as_label_strings, sorted_classes
from osteon.tasks.base import TASKS, ClassPrediction, Monitor, OutputWriter, Prediction, TaskBase, TaskState

ID_COLUMNS = ("image", "patient_id", "study_id", "split")
SIDES = ("L", "R")


def inner_kind(manifest: Manifest, column: str, loss: str | None) -> str:
    """``grade`` for ≥ 3 integer labels or ``loss: corn``; ``classify`` otherwise (and for ``loss: bce``)."""
    if loss in ("corn", "bce"):
        return "grade" if loss == "corn" else "classify"
    names = sorted_classes(as_label_strings(manifest.frame[column]))
    return "grade" if len(names) >= 3 and all(n.lstrip("-").isdigit() for n in names) else "classify"


def study_keys(frame: pd.DataFrame) -> pd.Series:
    """The study of each row: ``study_id``, else ``patient_id``, else the image."""
    key = frame["image"].astype(str)
    for column in ("patient_id", "study_id"):
        if column in frame:
            key = frame[column].astype("string").fillna(key).astype(str)
    return key


class StudyDataset(Dataset):
    """Items ``{"image": (V, C, S, S), "present": (V,) bool, "target": ..., "index": first Manifest row}``.

    ``slots`` is ``(N, V)`` positions into ``stack`` (-1: missing); ``flip`` ``(N, V)`` marks images to mirror.
    """

    def __init__(
        self,
        stack: np.ndarray,
        slots: np.ndarray,
        flip: np.ndarray,
        targets: np.ndarray,
        rows: np.ndarray,
        prep: Any,
        *,
        augment: Callable[[torch.Tensor], torch.Tensor] | None = None,
    ) -> None:
        self.stack = torch.from_numpy(stack)
        self.slots = slots
        self.flip = flip
        self.targets = targets
        self.rows = rows  # (N, V) Manifest rows per slot, -1 when missing
        self.indices = np.array([r[r >= 0][0] for r in rows], dtype=np.int64)
        self.prep = prep
        self.augment = augment

    def __len__(self) -> int:
        return len(self.slots)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        from osteon.data.transforms import normalize

        first = self.stack[0].float()
        shape = (1, *first.shape) if first.ndim == 2 else tuple(first.shape)
        images = torch.zeros((self.slots.shape[1], *shape))
        for v, position in enumerate(self.slots[i]):
            if position < 0:
                continue
            image = self.stack[position].float()
            image = image[None] if image.ndim == 2 else image
            if self.flip[i, v]:
                image = image.flip(-1)
            if self.augment is not None:
                image = self.augment(image).clamp(0, 1)
            images[v] = normalize(image, self.prep)
        return {
            "image": images,
            "present": torch.from_numpy(self.slots[i] >= 0),
            "target": torch.as_tensor(self.targets[i]),
            "index": torch.tensor(self.indices[i]),
        }


class _Inner:
    """The image-level task that reads, scores and evaluates the label (composition, not inheritance)."""

    @staticmethod
    def state(state: TaskState) -> TaskState:
        return TaskState(
            state.extra["inner"], state.target, state.class_names, state.positive_class, False, state.loss, {}
        )

    @staticmethod
    def setup(manifest: Manifest, target: str | None, positive_class: str | None, loss: str | None) -> TaskState:
        from osteon.tasks._targets import target_column

        column = target_column(manifest, target, "label")
        kind = inner_kind(manifest, column, loss)
        return TASKS.get(kind).setup(manifest, target=column, positive_class=positive_class, loss=loss)


def _study_setup(name: str, manifest: Manifest, target: str | None, positive_class: str | None, loss: str | None):
    inner = _Inner.setup(manifest, target, positive_class, loss)
    if inner.multilabel:
        raise ConfigError(f"{name}: multilabel targets are not supported by study models; choose one label column.")
    return TaskState(
        name, inner.target, inner.class_names, inner.positive_class, False, inner.loss, {"inner": inner.name}
    )


class _StudyHooks(TaskBase):
    """Hooks both study tasks share (their inner task, model options, scoring)."""

    monitor: ClassVar[Monitor] = Monitor("AUC", "max")  # the instance's is the inner task's (AUC or QWK)
    stratify_by_target: ClassVar[bool] = True
    prediction_type: ClassVar[type | None] = ClassPrediction

    def __init__(self, state: TaskState) -> None:
        super().__init__(state)
        self.inner = TASKS.get(state.extra["inner"])(_Inner.state(state))
        self.monitor = self.inner.monitor  # type: ignore[misc]
        self.prediction_type = self.inner.prediction_type  # type: ignore[misc]

    @classmethod
    def configure(cls, state: TaskState, cfg: Any) -> TaskState:
        from osteon.models.study import FUSIONS

        fusion = getattr(cfg, "fusion", "mean")
        if fusion not in FUSIONS:
            raise ConfigError(f"fusion={fusion!r} is not one of {', '.join(FUSIONS)}.")
        state.extra["fusion"] = fusion
        state.extra["shared_backbone"] = bool(getattr(cfg, "shared_backbone", True))
        return state

    @property
    def num_outputs(self) -> int:
        return self.inner.num_outputs

    def missing_targets(self, manifest: Manifest) -> np.ndarray:
        return self.inner.missing_targets(manifest)

    def class_weights(self, targets: np.ndarray) -> torch.Tensor | None:
        return self.inner.class_weights(targets)

    def predict(self, outputs: Any, **kwargs: Any) -> list[Prediction]:
        return self.inner.predict(outputs)

    def predict_image(
        self, model: nn.Module, path: str | Path, *, prep: Any, covariates: torch.Tensor | None = None
    ) -> Prediction:
        raise ConfigError(
            f"{self.name}: this model predicts studies, not single files. Fix: predict a Manifest that holds the "
            "study's images (osteon predict RUN manifest.csv), with patient_id/study_id, view or laterality."
        )

    def choose_operating_point(self, frame: pd.DataFrame) -> dict[str, Any] | None:
        return self.inner.choose_operating_point(frame)

    def evaluate(
        self, frame: pd.DataFrame, *, operating_point: dict[str, Any] | None, n_resamples: int, seed: int
    ) -> dict[str, Any]:
        result = self.inner.evaluate(frame, operating_point=operating_point, n_resamples=n_resamples, seed=seed)
        result["level"] = self.level
        return result

    level: ClassVar[str] = "image"

    def monitor_records(self, records: list[Any]) -> float:
        scores = np.stack([r[0] for r in records])
        targets = np.stack([r[1] for r in records])
        return self.inner.monitor_score(scores, targets)

    def _backbone(self, model: str, pretrained: str | None, covariate_dim: int) -> Callable[[], nn.Module]:
        from osteon.models.study import backbone_factory

        if covariate_dim:
            raise ConfigError(f"{self.name}: covariates are not supported by study models yet; drop --covariates.")
        return backbone_factory(model, in_chans=int(self.state.extra.get("in_chans", 1)), pretrained=pretrained)

    def _scores(self, model: nn.Module, dataset: Dataset, batch_size: int) -> np.ndarray:
        was_training = model.training
        model.eval()
        with torch.inference_mode():
            chunks = [
                self.inner.scores(model(b["image"], b["present"]))
                for b in DataLoader(dataset, batch_size=batch_size, shuffle=False)
            ]
        model.train(was_training)
        return np.concatenate(chunks) if chunks else np.zeros((0, len(self.state.class_names)), dtype=np.float32)


def _identity(manifest: Manifest, rows: np.ndarray, target: str, truth: list[Any] | None) -> pd.DataFrame:
    source = manifest.frame.iloc[rows]
    frame = pd.DataFrame({c: source[c].to_numpy() for c in ID_COLUMNS if c in source})
    if truth is not None:
        frame["truth"] = pd.array(truth, dtype="string")
    return frame


@TASKS.register("multiview")
class MultiViewTask(_StudyHooks):
    """One label per study from several views (late fusion; missing views allowed)."""

    name: ClassVar[str] = "multiview"
    level: ClassVar[str] = "study"

    @classmethod
    def setup(
        cls, manifest: Manifest, *, target: str | None, positive_class: str | None, loss: str | None
    ) -> TaskState:
        if "view" not in manifest.frame or manifest.frame["view"].isna().all():
            raise ConfigError(f"{manifest.name}: multiview needs a 'view' column (e.g. AP, lateral); it has none.")
        state = _study_setup("multiview", manifest, target, positive_class, loss)
        counts = manifest.frame["view"].dropna().astype(str).value_counts()
        state.extra["views"] = sorted(counts.index, key=lambda v: (-counts[v], v))
        return state

    def build_model(self, *, model: str, pretrained: str | None, covariate_dim: int, dropout: float) -> nn.Module:
        from osteon.models.study import MultiViewModel

        return MultiViewModel(
            self._backbone(model, pretrained, covariate_dim),
            self.state.extra["views"],
            self.num_outputs,
            shared=self.state.extra.get("shared_backbone", True),
            fusion=self.state.extra.get("fusion", "mean"),
            dropout=dropout,
        )

    def study_target(self, targets: np.ndarray) -> int:
        """The study's label from its images' (class indices, -1 unknown)."""
        known = targets[targets >= 0]
        if not len(known):
            return -1
        if self.state.extra["inner"] == "grade":
            return int(known.max())
        if self.state.positive_class is not None:
            positive = self.state.class_names.index(self.state.positive_class)
            return positive if (known == positive).any() else int(known[0])
        return int(known[0])

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
        views = self.state.extra["views"]
        frame = manifest.frame.iloc[rows]
        keys = study_keys(frame).to_numpy()
        view_of = frame["view"].astype("string").fillna("").to_numpy() if "view" in frame else np.full(len(rows), "")
        has_target = self.state.target in manifest.frame
        row_targets = self.inner.targets(manifest)[rows] if has_target else np.full(len(rows), -1)
        order = list(dict.fromkeys(keys))
        slots = np.full((len(order), len(views)), -1, dtype=np.int64)
        item_rows = np.full((len(order), len(views)), -1, dtype=np.int64)
        targets = np.full(len(order), -1, dtype=np.int64)
        position = {k: i for i, k in enumerate(order)}
        members: dict[int, list[int]] = {}
        for p, (key, view) in enumerate(zip(keys, view_of, strict=True)):
            i = position[key]
            members.setdefault(i, []).append(p)
            if view in views and slots[i, views.index(view)] < 0:
                slots[i, views.index(view)] = p
                item_rows[i, views.index(view)] = rows[p]
        for i, positions in members.items():
            targets[i] = self.study_target(np.asarray(row_targets[positions]))
            if (slots[i] < 0).all():  # no known view: the first image takes the first slot
                slots[i, 0], item_rows[i, 0] = positions[0], rows[positions[0]]
        flip = np.zeros_like(slots, dtype=bool)
        return StudyDataset(decoded.stack, slots, flip, targets, item_rows, prep, augment=augment)

    def training_loss(
        self, model: nn.Module, batch: dict[str, Any], class_weights: torch.Tensor | None
    ) -> torch.Tensor:
        return self.inner.loss(model(batch["image"], batch["present"]), batch["target"], class_weights)

    def validation_records(self, model: nn.Module, batch: dict[str, Any]) -> list[Any]:
        scores = self.inner.scores(model(batch["image"], batch["present"]))
        return list(zip(scores, batch["target"].cpu().numpy(), strict=True))

    def predict_rows(
        self,
        model: nn.Module,
        manifest: Manifest,
        dataset: Dataset,
        *,
        batch_size: int = 32,
        outputs: OutputWriter | None = None,
    ) -> pd.DataFrame:
        """One row per study: the first image's identifiers, ``views`` present, ``n_images``, ``truth``, scores."""
        ds: StudyDataset = dataset  # type: ignore[assignment]
        scores = self._scores(model, ds, batch_size)
        names = self.state.class_names
        truth = [names[t] if t >= 0 else pd.NA for t in ds.targets] if self.state.target in manifest.frame else None
        frame = _identity(manifest, ds.indices, self.state.target, truth)
        views = self.state.extra["views"]
        frame["views"] = ["|".join(v for v, r in zip(views, item, strict=True) if r >= 0) for item in ds.rows]
        frame["n_images"] = (ds.rows >= 0).sum(axis=1)
        return pd.concat([frame, self.inner.prediction_frame(scores).reset_index(drop=True)], axis=1)


@TASKS.register("bilateral")
class BilateralTask(_StudyHooks):
    """One label per side, each side compared with the mirrored other (Siamese); pairs by patient + laterality."""

    name: ClassVar[str] = "bilateral"

    @classmethod
    def setup(
        cls, manifest: Manifest, *, target: str | None, positive_class: str | None, loss: str | None
    ) -> TaskState:
        frame = manifest.frame
        if "laterality" not in frame or not frame["laterality"].astype("string").str.upper().isin(SIDES).any():
            raise ConfigError(
                f"{manifest.name}: bilateral needs a 'laterality' column with L/R values and a patient_id per image."
            )
        return _study_setup("bilateral", manifest, target, positive_class, loss)

    def build_model(self, *, model: str, pretrained: str | None, covariate_dim: int, dropout: float) -> nn.Module:
        from osteon.models.study import SiameseModel

        return SiameseModel(self._backbone(model, pretrained, covariate_dim), self.num_outputs, dropout=dropout)

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
        frame = manifest.frame.iloc[rows]
        patients = (
            frame["patient_id"].astype("string").fillna(frame["image"].astype(str)).to_numpy()
            if "patient_id" in frame
            else frame["image"].astype(str).to_numpy()
        )
        sides = frame["laterality"].astype("string").str.upper().fillna("").to_numpy()
        has_target = self.state.target in manifest.frame
        row_targets = self.inner.targets(manifest)[rows] if has_target else np.full(len(rows), -1)
        order: dict[tuple[str, int], int] = {}
        slot_list: list[list[int]] = []
        for p, (patient, side) in enumerate(zip(patients, sides, strict=True)):
            s = SIDES.index(side) if side in SIDES else 0
            key = (patient, 0)
            while key in order and slot_list[order[key]][s] >= 0:  # a second image of the same side: a new item
                key = (patient, key[1] + 1)
            if key not in order:
                order[key] = len(slot_list)
                slot_list.append([-1, -1])
            slot_list[order[key]][s] = p
        slots = np.array(slot_list, dtype=np.int64).reshape(-1, 2)
        item_rows = np.where(slots >= 0, rows[np.clip(slots, 0, None)], -1)
        targets = np.where(slots >= 0, row_targets[np.clip(slots, 0, None)], -1).astype(np.int64)
        flip = np.zeros_like(slots, dtype=bool)
        flip[:, 1] = True  # the right side mirrored onto the left
        return StudyDataset(decoded.stack, slots, flip, targets, item_rows, prep, augment=augment)

    def _pick(self, outputs: torch.Tensor, batch: dict[str, Any]) -> tuple[torch.Tensor, torch.Tensor]:
        keep = batch["present"] & (batch["target"] >= 0)
        return outputs[keep], batch["target"][keep]

    def training_loss(
        self, model: nn.Module, batch: dict[str, Any], class_weights: torch.Tensor | None
    ) -> torch.Tensor:
        outputs, targets = self._pick(model(batch["image"], batch["present"]), batch)
        return self.inner.loss(outputs, targets, class_weights)

    def validation_records(self, model: nn.Module, batch: dict[str, Any]) -> list[Any]:
        outputs, targets = self._pick(model(batch["image"], batch["present"]), batch)
        return list(zip(self.inner.scores(outputs), targets.cpu().numpy(), strict=True))

    def predict_rows(
        self,
        model: nn.Module,
        manifest: Manifest,
        dataset: Dataset,
        *,
        batch_size: int = 32,
        outputs: OutputWriter | None = None,
    ) -> pd.DataFrame:
        """One row per image (side), in Manifest order: identifiers, ``laterality``, ``truth``, the inner scores."""
        ds: StudyDataset = dataset  # type: ignore[assignment]
        scores = self._scores_per_side(model, ds, batch_size)
        present = ds.rows >= 0
        rows = ds.rows[present]
        flat = scores[present]
        names = self.state.class_names
        targets = ds.targets[present]
        order = np.argsort(rows, kind="stable")
        truth = [names[t] if t >= 0 else pd.NA for t in targets[order]] if self.state.target in manifest.frame else None
        frame = _identity(manifest, rows[order], self.state.target, truth)
        frame.insert(
            len(frame.columns) - (truth is not None),
            "laterality",
            manifest.frame["laterality"].iloc[rows[order]].to_numpy(),
        )
        return pd.concat([frame, self.inner.prediction_frame(flat[order]).reset_index(drop=True)], axis=1)

    def _scores_per_side(self, model: nn.Module, dataset: StudyDataset, batch_size: int) -> np.ndarray:
        was_training = model.training
        model.eval()
        chunks = []
        with torch.inference_mode():
            for b in DataLoader(dataset, batch_size=batch_size, shuffle=False):
                out = model(b["image"], b["present"])  # (B, 2, K)
                chunks.append(self.inner.scores(out.flatten(0, 1)).reshape(out.shape[0], 2, -1))
        model.train(was_training)
        return np.concatenate(chunks) if chunks else np.zeros((0, 2, len(self.state.class_names)), dtype=np.float32)
