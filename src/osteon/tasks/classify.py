"""``classify``: binary, multiclass and multilabel classification of images."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import pandas as pd
import torch
from torch import nn

from osteon import metrics
from osteon.data.manifest import Manifest
from osteon.errors import ConfigError
from osteon.tasks._image import ImageLevelTask
from osteon.tasks._targets import as_label_strings, patient_groups, sorted_classes, target_column
from osteon.tasks.base import TASKS, ClassPrediction, Monitor, TaskState

MULTILABEL_SEPARATOR = "|"
NEGATIVE_NAMES = {"0", "normal", "negative", "no", "absent", "healthy", "non_fractured", "nonfractured", "false"}


def default_positive_class(names: list[str]) -> str:
    """The positive class of a binary task: ``"1"``, else the class that is not a usual negative name
    (normal, negative, non_fractured ...), else the second in sorted order. ``--positive-class`` overrides.
    """
    if "1" in names:
        return "1"
    others = [n for n in names if n.lower() not in NEGATIVE_NAMES]
    return others[0] if len(others) == 1 else names[1]


@TASKS.register("classify")
class ClassificationTask(ImageLevelTask):
    """Softmax cross-entropy (binary, multiclass) or per-label BCE (multilabel, labels ``"a|b"``).

    Binary tasks are evaluated on the positive class's probability with an operating point chosen
    on the validation split (Youden by default).
    """

    name: ClassVar[str] = "classify"
    prediction_type: ClassVar[type | None] = ClassPrediction
    monitor: ClassVar[Monitor] = Monitor("AUC", "max")
    stratify_by_target: ClassVar[bool] = True

    # -- set-up ---------------------------------------------------------------------------------
    @classmethod
    def setup(
        cls, manifest: Manifest, *, target: str | None, positive_class: str | None, loss: str | None
    ) -> TaskState:
        column = target_column(manifest, target, "label")
        labels = as_label_strings(manifest.frame[column])
        multilabel = bool(labels.dropna().str.contains(MULTILABEL_SEPARATOR, regex=False).any())
        if multilabel:
            names = sorted({p for v in labels.dropna() for p in v.split(MULTILABEL_SEPARATOR) if p})
        else:
            names = sorted_classes(labels)
        if len(names) < 2:
            raise ConfigError(
                f"{manifest.name}: column {column!r} has {len(names)} class(es) {names}; classification needs ≥ 2. "
                "Fix: choose another --target or add images of the other classes."
            )
        if positive_class is not None and positive_class not in names:
            raise ConfigError(f"positive_class={positive_class!r} is not one of the classes {names}.")
        if len(names) == 2 and positive_class is None and not multilabel:
            positive_class = default_positive_class(names)
        loss = loss or ("bce" if multilabel else "ce")
        if loss not in ("ce", "bce"):
            raise ConfigError(f"loss={loss!r} is not available for classify; use ce or bce.")
        if multilabel and loss != "bce":
            raise ConfigError("Multilabel targets ('a|b') need loss=bce.")
        return TaskState("classify", column, names, positive_class, multilabel, loss)

    @property
    def class_names(self) -> list[str]:
        return self.state.class_names

    @property
    def num_outputs(self) -> int:
        return len(self.class_names)

    @property
    def is_binary(self) -> bool:
        return self.num_outputs == 2 and not self.state.multilabel

    # -- training -------------------------------------------------------------------------------
    def targets(self, manifest: Manifest) -> np.ndarray:
        """``(N,)`` class indices, or ``(N, C)`` 0/1 for multilabel; -1 / NaN rows for missing labels."""
        labels = as_label_strings(manifest.frame[self.state.target])
        index = {n: i for i, n in enumerate(self.class_names)}
        if self.state.multilabel:
            out = np.zeros((len(labels), self.num_outputs), dtype=np.float32)
            for row, value in enumerate(labels):
                if pd.isna(value):
                    out[row] = np.nan
                    continue
                for part in str(value).split(MULTILABEL_SEPARATOR):
                    if part:
                        out[row, self._index(index, part, manifest, row)] = 1.0
            return out
        return np.array(
            [-1 if pd.isna(v) else self._index(index, str(v), manifest, r) for r, v in enumerate(labels)],
            dtype=np.int64,
        )

    def _index(self, index: dict[str, int], value: str, manifest: Manifest, row: int) -> int:
        if value not in index:
            raise ConfigError(
                f"{manifest.name}: row {row} ({manifest.frame.at[row, 'image']}) has class {value!r}, which the "
                f"model was not trained on (classes: {self.class_names})."
            )
        return index[value]

    def class_weights(self, targets: np.ndarray) -> torch.Tensor | None:
        if self.state.multilabel:
            positives = np.nansum(targets, axis=0)
            negatives = np.sum(~np.isnan(targets), axis=0) - positives
            return torch.tensor(negatives / np.maximum(positives, 1), dtype=torch.float32)  # BCE pos_weight
        counts = np.bincount(targets[targets >= 0], minlength=self.num_outputs).astype(np.float64)
        weights = counts.sum() / np.maximum(counts, 1) / self.num_outputs
        return torch.tensor(weights, dtype=torch.float32)

    def loss(self, outputs: torch.Tensor, targets: torch.Tensor, weights: torch.Tensor | None = None) -> torch.Tensor:
        if self.state.multilabel:
            return nn.functional.binary_cross_entropy_with_logits(outputs, targets.float(), pos_weight=weights)
        return nn.functional.cross_entropy(outputs, targets.long(), weight=weights)

    # -- outputs --------------------------------------------------------------------------------
    def scores(self, outputs: torch.Tensor) -> np.ndarray:
        outputs = outputs.detach().float()
        probs = torch.sigmoid(outputs) if self.state.multilabel else torch.softmax(outputs, dim=1)
        return probs.cpu().numpy()

    def predict(self, outputs: torch.Tensor, **kwargs: Any) -> list[ClassPrediction]:
        return self.predict_from_scores(self.scores(outputs))

    def monitor_score(self, scores: np.ndarray, targets: np.ndarray) -> float:
        """Validation AUC (binary: positive class; multiclass: macro one-vs-rest; multilabel: mean)."""
        frame = self.prediction_frame(scores)
        frame["truth"] = self._truth_strings(targets)
        return float(self._auc(frame))

    def _auc(self, frame: pd.DataFrame) -> float:
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if self.is_binary:
                y = (frame["truth"] == self.state.positive_class).to_numpy(int)
                return float(metrics.roc_auc_score(y, frame[f"prob_{self.state.positive_class}"].to_numpy()))
            if self.state.multilabel:
                aucs = [
                    metrics.roc_auc_score(
                        frame["truth"].str.split("|").map(lambda s, n=n: n in s).to_numpy(int),
                        frame[f"prob_{n}"].to_numpy(),
                    )
                    for n in self.class_names
                ]
                return float(np.nanmean(aucs))
            y = frame["truth"].map({n: i for i, n in enumerate(self.class_names)}).to_numpy(int)
            proba = frame[[f"prob_{n}" for n in self.class_names]].to_numpy()
            return float(metrics.roc_auc_score(y, proba))

    def _truth_strings(self, targets: np.ndarray) -> list[str]:
        if self.state.multilabel:
            return ["|".join(n for n, v in zip(self.class_names, row, strict=True) if v >= 0.5) for row in targets]
        return [self.class_names[int(t)] for t in targets]

    def prediction_frame(self, scores: np.ndarray) -> pd.DataFrame:
        frame = pd.DataFrame({f"prob_{n}": scores[:, i] for i, n in enumerate(self.class_names)})
        frame["prediction"] = [p.label for p in self.predict_from_scores(scores)]
        return frame

    def predict_from_scores(self, scores: np.ndarray) -> list[ClassPrediction]:
        names = tuple(self.class_names)
        if self.state.multilabel:
            labels = ["|".join(n for n, v in zip(names, p, strict=True) if v >= 0.5) for p in scores]
        else:
            labels = [names[int(i)] for i in np.argmax(scores, axis=1)]
        return [ClassPrediction(p, names, lab, self.state.multilabel) for p, lab in zip(scores, labels, strict=True)]

    # -- evaluation -----------------------------------------------------------------------------
    def ensemble_outputs(self, outputs: list[torch.Tensor], members: list[TaskState] | None = None) -> torch.Tensor:
        """Logits whose softmax (sigmoid for multilabel) is the members' mean probability."""
        from osteon.tasks._ensemble import mean_sigmoid, mean_softmax

        return mean_sigmoid(outputs) if self.state.multilabel else mean_softmax(outputs)

    def choose_operating_point(self, frame: pd.DataFrame, *, method: str = "youden") -> dict[str, Any] | None:
        if not self.is_binary:
            return None
        y = (frame["truth"] == self.state.positive_class).to_numpy(int)
        score = frame[f"prob_{self.state.positive_class}"].to_numpy()
        threshold = metrics.choose_threshold(y, score, method=method)
        return {"threshold": float(threshold), "method": method, "chosen_on": "val", "n": len(y)}

    def evaluate(
        self, frame: pd.DataFrame, *, operating_point: dict[str, Any] | None, n_resamples: int, seed: int
    ) -> dict[str, Any]:
        groups = patient_groups(frame)
        if self.is_binary:
            y = (frame["truth"] == self.state.positive_class).to_numpy(int)
            score = frame[f"prob_{self.state.positive_class}"].to_numpy()
            threshold = operating_point["threshold"] if operating_point else 0.5
            result = metrics.binary_report(
                y, score, groups=groups, threshold=threshold, n_resamples=n_resamples, seed=seed
            )
            result["operating_point"] = operating_point or {"threshold": 0.5, "method": "default 0.5 (no val split)"}
            result["positive_class"] = self.state.positive_class
            return result
        if self.state.multilabel:
            per_label = {}
            for n in self.class_names:
                y = frame["truth"].fillna("").str.split("|").map(lambda s, n=n: n in s).to_numpy(int)
                per_label[n] = metrics.binary_report(
                    y, frame[f"prob_{n}"].to_numpy(), groups=groups, threshold=0.5, n_resamples=n_resamples, seed=seed
                )
            return {"per_label": per_label}
        y = frame["truth"].map({n: i for i, n in enumerate(self.class_names)}).to_numpy(int)
        proba = frame[[f"prob_{n}" for n in self.class_names]].to_numpy()
        return metrics.multiclass_report(
            y, proba, class_names=self.class_names, groups=groups, n_resamples=n_resamples, seed=seed
        )
