"""``probe``: is a backbone's frozen representation any good for a labelled question, before fine-tuning?

The backbone (a pretrain run or ``backbone.pt``, a trained run's image backbone, or ``"random"``) embeds every
labelled image of a Manifest once (global-pooled features, no gradients); a k-nearest-neighbour classifier
(cosine distance) and a linear probe (logistic regression on standardised features, scikit-learn) are fitted on
the train split and scored on the test split (the validation split when there is no test split). Accuracy and,
for two classes, the AUC come with bootstrap CIs resampled by patient (:func:`osteon.metrics.bootstrap_ci`).
The same is done for a randomly initialised backbone of the same architecture, the baseline that shows whether
pretraining helped (the input statistics alone already let a random network separate some classes).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from osteon.data.adapters import load_dataset
from osteon.data.datasets import decode_images
from osteon.data.manifest import Manifest
from osteon.data.splits import apply_split_file, make_splits
from osteon.data.transforms import Preprocessing
from osteon.errors import ConfigError

__all__ = ["ProbeBackbone", "load_probe_backbone", "probe"]

RANDOM = "random"


@dataclass
class ProbeBackbone:
    """A frozen backbone to probe and what it is.

    Attributes:
        module: timm-style backbone (``forward_features`` and ``forward_head(x, pre_logits=True)``).
        model: Registry name of its architecture.
        in_chans: Input channels.
        label: Short name for tables and figures.
        source: Where it came from (a path or ``"random"``).
        provenance: The pretraining record of a backbone file (``{}`` otherwise).
        image_size: The size it was trained at, when known.
    """

    module: nn.Module
    model: str
    in_chans: int
    label: str
    source: str
    provenance: dict[str, Any]
    image_size: int | None = None

    def describe(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "source": self.source,
            "model": self.model,
            "in_chans": self.in_chans,
            "provenance": self.provenance,
        }


def load_probe_backbone(
    backbone: str | Path, *, model: str | None = None, in_chans: int = 1, seed: int = 0
) -> ProbeBackbone:
    """The backbone ``backbone`` names: a pretrain run or ``backbone.pt``, a trained run, or ``"random"``.

    Args:
        backbone: A pretrain run directory / ``backbone.pt``; a run of ``osteon train`` whose model has an image
            backbone (classify, grade, regress ...); or ``"random"`` (needs ``model``).
        model: Registry name of the architecture for ``"random"`` (ignored otherwise).
        in_chans: Input channels for ``"random"``.
        seed: Seed of a random initialisation.

    Raises:
        ConfigError: ``"random"`` without ``model``, a path that is none of these, or a run without an image backbone.
    """
    from osteon.models.network import create_backbone
    from osteon.models.pretrained import backbone_source
    from osteon.models.registry import get_model_entry

    if str(backbone) == RANDOM:
        if not model:
            raise ConfigError("probing 'random' needs --model (the architecture to initialise at random).")
        torch.manual_seed(seed)
        module = create_backbone(get_model_entry(model), in_chans=in_chans, pretrained=None)
        return ProbeBackbone(module, model, in_chans, f"random {model}", RANDOM, {})
    path = Path(backbone)
    if path.is_dir() and (path / "model.pt").is_file() and not (path / "backbone.pt").is_file():
        return _run_backbone(path)
    if not path.exists():
        raise ConfigError(
            f"{path}: no such backbone. Fix: pass the run directory of `osteon pretrain` (or its backbone.pt), a "
            "run of `osteon train`, or 'random' with --model."
        )
    source = backbone_source(path)
    if source is None:
        raise ConfigError(
            f"{path}: not a backbone file (a raw state dict or a model.pt is not one). Fix: pass the run directory "
            "of `osteon pretrain` (or its backbone.pt), a run of `osteon train`, or 'random' with --model."
        )
    module = create_backbone(get_model_entry(source.model), in_chans=source.in_chans, pretrained=str(source.path))
    size = source.provenance.get("image_size")
    return ProbeBackbone(
        module,
        source.model,
        source.in_chans,
        f"{source.method} {source.model}",
        str(source.path),
        source.record(),
        int(size) if size else None,
    )


def _run_backbone(path: Path) -> ProbeBackbone:
    from osteon.engine.predictor import Predictor

    predictor = Predictor.from_run(path)
    module = getattr(predictor.model, "backbone", None)
    if not isinstance(module, nn.Module) or not hasattr(module, "forward_features"):
        raise ConfigError(
            f"{path}: its model ({type(predictor.model).__name__}) has no image backbone to probe. Fix: pass a run "
            "of an image classifier (classify, grade, regress) or a pretrain run."
        )
    cfg = predictor.meta.get("config", {})
    name = str(cfg.get("model", "?"))
    return ProbeBackbone(
        module,
        name,
        predictor.preprocessing.channels,
        f"trained {name} ({path.name})",
        str(path),
        {},
        predictor.preprocessing.image_size,
    )


def probe(
    backbone: str | Path,
    *,
    data: str | Path,
    target: str = "label",
    split_file: str | Path | None = None,
    model: str | None = None,
    image_size: int | None = None,
    eval_split: str = "test",
    baseline: bool = True,
    neighbours: int = 20,
    batch_size: int = 32,
    n_resamples: int = 1000,
    seed: int = 0,
    progress: bool = True,
) -> dict[str, Any]:
    """k-NN and linear-probe accuracy (and binary AUC) of a frozen backbone and of a random one of its architecture.

    Args:
        backbone: See :func:`load_probe_backbone`.
        data: Dataset folder, annotation file or Manifest CSV (any format the adapters read).
        target: Manifest column holding the class of each image.
        split_file: CSV of ``image,split`` to use instead of the data's own split.
        model: Architecture of a ``"random"`` backbone.
        image_size: Square input side (default: the backbone's pretraining size, else 224).
        eval_split: ``"test"`` (falls back to ``"val"`` when the split has no test images) or ``"val"``.
        baseline: Also probe a randomly initialised backbone of the same architecture.
        neighbours: ``k`` of the k-NN classifier (at most the number of training images).
        batch_size: Images per forward pass.
        n_resamples: Bootstrap resamples of the CIs.
        seed: Seed of the random baseline, the generated split and the bootstrap.
        progress: Show progress bars.

    Returns:
        A JSON-able dict: ``data``, ``target``, ``classes``, ``image_size``, ``eval_split``, ``n_train``, ``n_eval``,
        ``backbones`` (what each probed backbone is) and ``results[label][probe][metric]`` =
        ``{estimate, low, high, n_resamples, n_valid}`` with ``probe`` ``knn`` | ``linear`` and ``metric``
        ``accuracy`` | ``auc``; ``comparison[probe][metric]`` = ``{difference, low, high, p_value}``, the backbone
        minus the random baseline on the same images (paired bootstrap by patient; ``{}`` without a baseline).

    Raises:
        ConfigError: unknown target column, fewer than two classes in train, no evaluation images.

    Example:
        >>> result = probe("runs/pretrain/backbone.pt", data="phantom/manifest.csv")  # doctest: +SKIP
        >>> result["results"]["simclr resnet18"]["linear"]["auc"]["estimate"]  # doctest: +SKIP
        0.81
    """
    if eval_split not in ("test", "val"):
        raise ConfigError(f"eval_split={eval_split!r}; use 'test' or 'val'.")
    subject = load_probe_backbone(backbone, model=model, seed=seed)
    size = int(image_size or subject.image_size or 224)
    manifest = _split_manifest(load_dataset(data), target, split_file, seed)
    rows, labels, classes, used_split = _rows_and_labels(manifest, target, eval_split)
    prep = Preprocessing(image_size=size, channels=subject.in_chans)
    decoded = decode_images(manifest.paths_of(np.concatenate(rows)), prep, progress=progress, description="probe")
    if decoded.errors:
        first = next(iter(decoded.errors.values()))
        raise ConfigError(
            f"{len(decoded.errors)} image(s) could not be read (first: {first}). Fix: `osteon data check`."
        )
    n_train = len(rows[0])
    stacks = (decoded.stack[:n_train], decoded.stack[n_train:])
    groups = _groups(manifest, rows[1])
    backbones = [subject]
    if baseline and subject.source != RANDOM:  # the same architecture and channels, random weights
        backbones.append(load_probe_backbone(RANDOM, model=subject.model, in_chans=subject.in_chans, seed=seed))
    results: dict[str, Any] = {}
    probabilities: list[dict[str, np.ndarray]] = []
    for item in backbones:
        features = [_features(item.module, s, prep, batch_size, progress, item.label) for s in stacks]
        results[item.label], proba = _fit_and_score(
            features, labels, len(classes), groups, neighbours=neighbours, n_resamples=n_resamples, seed=seed
        )
        probabilities.append(proba)
    comparison = (
        _compare(probabilities, labels[1], groups, n_resamples=n_resamples, seed=seed)
        if len(probabilities) == 2
        else {}
    )
    return {
        "data": str(data),
        "target": target,
        "classes": classes,
        "image_size": size,
        "eval_split": used_split,
        "n_train": n_train,
        "n_eval": len(rows[1]),
        "neighbours": min(neighbours, n_train),
        "majority_accuracy": float(np.bincount(labels[1]).max() / len(labels[1])),  # always the commonest class
        "backbones": [b.describe() for b in backbones],
        "results": results,
        "comparison": comparison,
    }


def _split_manifest(manifest: Manifest, target: str, split_file: str | Path | None, seed: int) -> Manifest:
    if target not in manifest.frame:
        raise ConfigError(
            f"{manifest.name}: no column {target!r} (columns: {', '.join(map(str, manifest.frame.columns))}). "
            "Fix: pass --target COLUMN."
        )
    if split_file:
        return apply_split_file(manifest, Path(split_file))
    frame = manifest.frame
    labelled = frame[target].notna()
    split = frame["split"].astype("string").fillna("") if "split" in frame else None
    if (
        split is not None
        and (split[labelled] != "").all()
        and (split == "train").any()
        and split.isin(["val", "test"]).any()
    ):
        return manifest  # the dataset's own split covers every labelled image
    warnings.warn(
        f"{manifest.name}: its split does not cover every labelled image in train and val/test; a patient-grouped "
        f"split stratified by {target!r} (seed {seed}) is made. Fix: pass --split-file to choose one.",
        stacklevel=3,
    )
    return manifest.with_columns(split=make_splits(manifest, stratify=target, seed=seed).to_numpy())


def _rows_and_labels(
    manifest: Manifest, target: str, eval_split: str
) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray], list[str], str]:
    frame = manifest.frame
    values = frame[target].astype("string").str.strip()
    labelled = (values.notna() & (values != "")).to_numpy(bool)
    split = frame["split"].astype("string").fillna("").to_numpy()
    train = np.flatnonzero((split == "train") & labelled)
    used = eval_split
    evaluated = np.flatnonzero((split == used) & labelled)
    if not len(evaluated) and used == "test":
        used = "val"
        evaluated = np.flatnonzero((split == used) & labelled)
    classes = sorted(set(values.iloc[train].astype(str)))
    if len(classes) < 2:
        raise ConfigError(
            f"{manifest.name}: the train split has {len(classes)} class(es) of {target!r}; a probe needs 2+."
        )
    unknown = ~values.iloc[evaluated].astype(str).isin(classes).to_numpy(bool)
    if unknown.any():
        warnings.warn(f"{int(unknown.sum())} {used} image(s) of classes absent from train are left out.", stacklevel=3)
        evaluated = evaluated[~unknown]
    if not len(evaluated):
        raise ConfigError(f"{manifest.name}: no labelled test or val images to score the probe on.")
    index = {c: i for i, c in enumerate(classes)}
    labels = tuple(np.array([index[str(v)] for v in values.iloc[r]], dtype=np.int64) for r in (train, evaluated))
    return (train, evaluated), labels, classes, used  # type: ignore[return-value]


def _groups(manifest: Manifest, rows: np.ndarray) -> np.ndarray | None:
    if "patient_id" not in manifest.frame:
        return None
    ids = manifest.frame["patient_id"].iloc[rows]
    return None if ids.isna().any() else ids.astype(str).to_numpy()


@torch.no_grad()
def _features(
    module: nn.Module, stack: np.ndarray, prep: Preprocessing, batch_size: int, progress: bool, label: str
) -> np.ndarray:
    """``(N, F)`` pooled features of a ``(N, [C,] S, S)`` unit-range stack (normalised as training does)."""
    module.eval()
    starts = range(0, len(stack), batch_size)
    if progress and len(stack) > batch_size:
        from rich.progress import track

        starts = track(starts, description=f"features · {label}", transient=True)  # type: ignore[assignment]
    out = []
    for start in starts:
        batch = torch.from_numpy(stack[start : start + batch_size].astype(np.float32))
        if batch.ndim == 3:
            batch = batch[:, None]
        batch = (batch - prep.mean) / prep.std
        pooled = module.forward_head(module.forward_features(batch), pre_logits=True)  # type: ignore[operator]
        out.append(pooled.flatten(1).float().numpy())
    return np.concatenate(out)


def _fit_and_score(
    features: list[np.ndarray],
    labels: tuple[np.ndarray, np.ndarray],
    n_classes: int,
    groups: np.ndarray | None,
    *,
    neighbours: int,
    n_resamples: int,
    seed: int,
) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """Metrics with CIs per probe, and each probe's ``(N_eval, n_classes)`` probabilities."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from osteon.metrics import accuracy_score, bootstrap_ci, roc_auc_score

    train, test = features
    y_train, y_test = labels
    probes = {
        "knn": KNeighborsClassifier(n_neighbors=min(neighbours, len(train)), metric="cosine"),
        "linear": make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000)),
    }
    scores: dict[str, Any] = {}
    probabilities: dict[str, np.ndarray] = {}
    for name, estimator in probes.items():
        estimator.fit(train, y_train)
        proba = np.zeros((len(test), n_classes))
        proba[:, estimator.classes_] = estimator.predict_proba(test)
        predicted = proba.argmax(1)
        kwargs = {"groups": groups, "n_resamples": n_resamples, "seed": seed}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # undefined resamples (one class drawn) are counted in n_valid
            metrics = {"accuracy": bootstrap_ci(accuracy_score, y_test, predicted, **kwargs).as_dict()}
            if n_classes == 2 and len(np.unique(y_test)) == 2:
                metrics["auc"] = bootstrap_ci(roc_auc_score, y_test, proba[:, 1], **kwargs).as_dict()
        scores[name] = metrics
        probabilities[name] = proba
    return scores, probabilities


def _compare(
    probabilities: list[dict[str, np.ndarray]],
    y_true: np.ndarray,
    groups: np.ndarray | None,
    *,
    n_resamples: int,
    seed: int,
) -> dict[str, Any]:
    """Backbone minus random baseline per probe: accuracy (and binary AUC) difference, paired bootstrap CI and p."""
    from osteon.metrics import accuracy_score, paired_bootstrap_test, roc_auc_score

    binary = probabilities[0]["knn"].shape[1] == 2 and len(np.unique(y_true)) == 2
    out: dict[str, Any] = {}
    for name in probabilities[0]:
        a, b = probabilities[0][name], probabilities[1][name]
        pairs = {"accuracy": (accuracy_score, a.argmax(1), b.argmax(1))}
        if binary:
            pairs["auc"] = (roc_auc_score, a[:, 1], b[:, 1])
        out[name] = {}
        for metric, (fn, score_a, score_b) in pairs.items():
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                diff, ci, p = paired_bootstrap_test(
                    fn, y_true, score_a, score_b, groups=groups, n_resamples=n_resamples, seed=seed
                )
            out[name][metric] = {"difference": diff, "low": ci.low, "high": ci.high, "p_value": p}
    return out
