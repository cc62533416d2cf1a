"""The Method and Results sections of the report, built from the run's files."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from osteon.report import figures as figs
from osteon.report.rundata import RunData, usable
from osteon.report.tables import Table, fmt, key_value_table, metric_tables, two_by_two

#: Box overlay images (``figures/overlays_<key>/``) embedded per evaluation.
MAX_OVERLAYS = 4


@dataclass
class Figure:
    caption: str
    uri: str


@dataclass
class ResultSection:
    key: str
    title: str
    tables: list[Table] = field(default_factory=list)
    figures: list[Figure] = field(default_factory=list)


# -- method -----------------------------------------------------------------------------------------
def model_description(data: RunData, *, cam_layer: bool = True) -> str:
    cfg = data.config
    entry = str(cfg.get("model", "?"))
    layer = ""
    try:
        from osteon.models import get_model_entry

        model_entry = get_model_entry(entry)
        layer = model_entry.feature_layer
        entry += f" (timm {model_entry.timm_name})" if model_entry.timm_name else " (Osteon)"
    except Exception:
        pass
    if cfg.get("encoder"):
        entry += f", encoder {cfg['encoder']}"
    return entry + (f"; CAM layer backbone.{layer}" if layer and cam_layer else "")


def initialisation(data: RunData) -> str:
    pretrained = data.config.get("pretrained")
    backbone = data.state.get("pretrained")
    if isinstance(backbone, dict):  # a self-supervised backbone (osteon pretrain), with its provenance
        return pretrained_provenance(backbone)
    if not pretrained:
        return "random (library default initialisation); no transfer learning"
    if pretrained == "hub":
        return "ImageNet weights from the timm hub (first convolution adapted to one channel)"
    return f"weights from local file {pretrained} (first convolution adapted to one channel)"


def pretrained_provenance(record: dict[str, Any]) -> str:
    """One sentence on a self-supervised backbone: method, epochs, images, data, file and its SHA-256."""
    data = record.get("data") or []
    sources = ", ".join(map(str, data if isinstance(data, list) else [data])) or "?"
    n_images = record.get("n_images")
    size = record.get("image_size")
    return (
        f"self-supervised {record.get('method', '?')} backbone ({record.get('model', '?')}, "
        f"{record.get('epochs', '?')} epochs on {n_images if n_images is not None else '?'} unlabelled images"
        f"{f' at {size} px' if size else ''} from {sources}) loaded from {record.get('path', '?')} "
        f"(SHA-256 {str(record.get('sha256', ''))[:12]}…), then fine-tuned"
    )


def augmentation(data: RunData) -> str:
    cfg = data.config
    if not cfg.get("augment", True):
        return "none"
    parts = []
    if cfg.get("hflip"):
        parts.append("horizontal flips")
    if cfg.get("rotate_degrees") or cfg.get("scale_range"):
        parts.append(
            f"affine (rotation ±{cfg.get('rotate_degrees')}°, scale ±{cfg.get('scale_range')}, translation ±3%)"
        )
    if cfg.get("brightness") or cfg.get("contrast"):
        parts.append(f"brightness ±{cfg.get('brightness')}, contrast ±{cfg.get('contrast')}")
    if cfg.get("gamma"):
        parts.append(f"gamma ±{cfg.get('gamma')}")
    return "; ".join(parts) or "none"


def training_summary(data: RunData) -> str:
    cfg = data.config
    text = (
        f"{cfg.get('optimizer')} (lr {cfg.get('lr')}, weight decay {cfg.get('weight_decay')}), scheduler "
        f"{cfg.get('scheduler')}, {cfg.get('epochs')} epochs, batch {cfg.get('batch_size')}"
    )
    if cfg.get("accumulate_grad_batches", 1) > 1:
        text += f" × {cfg['accumulate_grad_batches']} accumulated"
    if cfg.get("early_stopping_patience"):
        text += f", early stopping after {cfg['early_stopping_patience']} epochs without gain"
    if cfg.get("freeze_backbone_epochs"):
        text += f", backbone frozen for {cfg['freeze_backbone_epochs']} epochs"
    return text + f", precision {cfg.get('precision')}, seed {cfg.get('seed')}"


def loss_description(data: RunData) -> str:
    loss = data.task_state.get("loss") or data.config.get("loss") or "default"
    names = {
        "ce": "cross-entropy",
        "bce": "binary cross-entropy per label",
        "corn": "CORN ordinal loss",
        "l1": "L1 (mean absolute error)",
        "mse": "mean squared error",
        "huber": "Huber (smooth L1)",
    }
    weighting = data.config.get("class_weighting", "none")
    extra = {"loss": "; classes weighted by inverse frequency", "sampler": "; class-balanced sampling"}.get(
        weighting, ""
    )
    return names.get(str(loss), str(loss)) + extra


def epochs_run(data: RunData) -> int | None:
    if not data.log.empty and "epoch" in data.log:
        return int(data.log["epoch"].max()) + 1
    return None


def best_epoch(data: RunData) -> int | None:
    value = data.training.get("best_epoch", data.model_meta.get("best_epoch"))
    return int(value) if isinstance(value, int | float) and value >= 0 else None


def _selection_text(data: RunData) -> str:
    if data.config.get("select_epoch") == "last":
        return f"the last epoch (checkpoint last.ckpt), not the one with the best {data.monitor_text()}"
    return f"epoch with the best {data.monitor_text()} (checkpoint best.ckpt)"


def _calibration_rows(task: dict) -> list[tuple[str, str]]:
    """Post-processing the task chose on validation predictions (``Task.calibrate``), when it chose any."""
    chosen = task.get("extra", {}).get("calibration")
    if not chosen:
        return []
    values = ", ".join(f"{k} {v}" for k, v in chosen.items() if k not in ("chosen_on", "method") and _scalar(v))
    how = f"chosen on {chosen.get('chosen_on', '?')}" + (f": {chosen['method']}" if chosen.get("method") else "")
    return [("post-processing", f"{values} ({how})")]


def _scalar(value: object) -> bool:
    return isinstance(value, int | float | str) and not isinstance(value, bool)


def method_tables(data: RunData) -> list[Table]:
    cfg, task = data.config, data.task_state
    prep = data.state.get("preprocessing", {})
    size = prep.get("image_size", cfg.get("image_size"))
    seconds, time_source = data.training_seconds()
    hardware = data.training.get("hardware") or data.model_meta.get("hardware")
    best = best_epoch(data)
    ran = epochs_run(data)
    model_rows = [
        ("task", f"{data.task} — target column {task.get('target')!r}"),
        ("classes", ", ".join(map(str, task.get("class_names", []))) or "— (a number)"),
        ("positive class", task.get("positive_class") or "—"),
        ("model", model_description(data)),
        ("parameters", data.n_parameters or "—"),
        ("covariates fed to the head", ", ".join(cfg.get("covariates", [])) or "none"),
        ("initialisation", initialisation(data)),
    ]
    data_rows = [
        ("input", f"1 channel, {size}×{size} px"),
        (
            "preprocessing",
            (
                f"grey values in [0, 1] (DICOM rescale/VOI LUT applied, MONOCHROME1 inverted), "
                f"{'letterboxed (aspect ratio kept, zero padding)' if prep.get('letterbox', True) else 'resized'} to "
                f"{size} px, then (x − {prep.get('mean', 0.5)}) / {prep.get('std', 0.25)}"
            ),
        ),
        ("augmentation (training only)", augmentation(data)),
    ]
    train_rows = [
        ("loss", loss_description(data)),
        ("optimisation", training_summary(data)),
        ("model selection", _selection_text(data)),
        (
            "selected epoch",
            f"{best} (0-based) of {ran if ran is not None else cfg.get('epochs')} run" if best is not None else "—",
        ),
        ("operating point", _operating_point_text(data)),
        *_calibration_rows(task),
        ("training time", f"{seconds / 60:.1f} min ({time_source})" if seconds is not None else "not recorded"),
        (
            "hardware",
            _hardware_text(hardware) if hardware else "not recorded in the run (to be completed by the authors)",
        ),
        ("software", software_versions(data) or "not recorded (no model.pt)"),
    ]
    from osteon.report.crossval import crossval_tables

    return [
        key_value_table("Model", model_rows),
        key_value_table("Data preparation", data_rows),
        key_value_table(
            "Training", train_rows, note="From config.yaml, state.json, training.json, logs/metrics.csv and model.pt."
        ),
        *crossval_tables(data),  # ensemble members; cross-validation folds, spread and pooled metrics
    ]


def software_versions(data: RunData) -> str:
    versions = data.model_meta.get("versions", {})
    return ", ".join(f"{k} {v}" for k, v in versions.items())


def _operating_point_text(data: RunData) -> str:
    point = data.run.read_json(data.run.operating_point)
    if not point:
        return "none (not a binary task)" if data.task_state.get("positive_class") is None else "default 0.5"
    return (
        f"threshold {fmt(point.get('threshold'))} on P({data.task_state.get('positive_class')}), chosen by "
        f"{point.get('method')} on the {point.get('chosen_on')} split ({point.get('n')} images), "
        "applied unchanged to test"
    )


def method_figures(data: RunData) -> list[Figure]:
    name, direction = data.monitor()
    label = f"validation {name}" if direction == "max" else f"−validation {name}"
    fig = figs.learning_curve_figure(data.log, best_epoch=best_epoch(data), score_label=label)
    out = [Figure("Learning curves (logs/metrics.csv); dash-dot: model.pt's epoch", figs.data_uri(fig))] if fig else []
    from osteon.report.crossval import crossval_figures

    return out + [Figure(caption, uri) for caption, uri in crossval_figures(data)]  # ROC of each fold (CV)


# -- results ----------------------------------------------------------------------------------------
def evaluation_title(data: RunData, key: str) -> str:
    result = data.metrics[key]
    kind = "external test" if key in data.external_keys else f"{key} split"
    return f"{key} — {kind}: {result.get('data', '')}"


def result_section(data: RunData, key: str, *, readers: Sequence[dict[str, Any]] = ()) -> ResultSection:
    """Tables and figures of one evaluation (``metrics.json[key]``)."""
    result = data.metrics[key]
    section = ResultSection(key, evaluation_title(data, key))
    counts = [
        (f"{data.kind.evaluated_unit(data)} evaluated", result.get("n_images", result.get("n"))),
        ("patients", result.get("n_patients")),
        ("unreadable (left out)", result.get("n_unreadable")),
        ("without reference (left out)", result.get("n_unlabelled")),
    ]
    ci = result.get("ci") or {}
    note = (
        f"95% CIs: {ci.get('method', 'percentile bootstrap')}, resampled by {ci.get('resampled_by', '?')}, "
        f"{ci.get('n_resamples', '?')} resamples, seed {ci.get('seed', '?')}."
    )
    shown = [(k, v) for k, v in counts if v is not None and not (k == "patients" and not v)]
    section.tables.append(key_value_table("Evaluated set", shown, note=note))
    section.tables += data.kind.result_tables(data, key, result)  # per-target tables, unit of analysis ...
    if isinstance(result.get("operating_point"), dict):
        point = result["operating_point"]
        section.tables.append(
            key_value_table(
                "Operating point",
                [
                    ("threshold", result.get("threshold", point.get("threshold"))),
                    ("chosen by", point.get("method")),
                    ("chosen on", point.get("chosen_on", "—")),
                    ("images it was chosen on", point.get("n", "—")),
                ],
            )
        )
    positive = result.get("positive_class")
    skip = ["operating_point", "positive_class", "threshold"]
    if (
        positive is not None
        and isinstance(result.get("confusion_matrix"), list)
        and len(result["confusion_matrix"]) == 2
    ):
        section.tables.append(two_by_two(result["confusion_matrix"], str(positive)))
        skip.append("confusion_matrix")
    names = result.get("class_names") or data.task_state.get("class_names")
    section.tables += metric_tables(result, title="Metrics", class_names=names, skip=skip)
    section.figures = _result_figures(data, key, result, readers)
    return section


def _result_figures(data: RunData, key: str, result: dict[str, Any], readers: Any) -> list[Figure]:
    frame = data.predictions.get(key)
    out: list[Figure] = []
    made: set[str] = set()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if frame is not None and len(usable(frame)):
            rows = usable(frame)
            positive = result.get("positive_class")
            if positive is not None and f"prob_{positive}" in rows:
                y, score = figs.binary_arrays(rows, str(positive))
                if 0 < y.sum() < len(y):
                    point = None
                    if "sensitivity" in result and "specificity" in result:
                        point = (result["sensitivity"]["estimate"], result["specificity"]["estimate"])
                    fig = figs.roc_figure(
                        y,
                        score,
                        title=f"ROC — {key}",
                        groups=figs.groups_of(rows),
                        auc=result.get("auc"),
                        operating_point=point,
                        readers=readers or (),
                    )
                    caption = "ROC curve with 95% bootstrap band; red: operating point chosen on validation"
                    if readers:
                        caption += "; markers: human readers (Wilson 95% CIs)"
                    out.append(Figure(caption, figs.data_uri(fig)))
                    out.append(
                        Figure(
                            "Calibration (quantile bins)",
                            figs.data_uri(figs.calibration_figure(y, score, title=f"Calibration — {key}")),
                        )
                    )
                    made |= {f"{key}_roc.png", f"{key}_calibration.png"}
            for caption, fig, name in data.kind.result_figures(data, key, rows):
                out.append(Figure(caption, figs.data_uri(fig)))
                made.add(name)
        if isinstance(result.get("confusion_matrix"), list) and result["confusion_matrix"]:
            from osteon.report.pubfigs import confusion_names

            names = confusion_names(result, data.task_state)
            fig = figs.confusion_figure(result["confusion_matrix"], names, title=f"Confusion — {key}")
            out.append(Figure("Confusion matrix (rows: reference, columns: prediction)", figs.data_uri(fig)))
            made.add(f"{key}_confusion.png")
    # figures `osteon evaluate` wrote into RUN/figures (FROC, Dice distributions, overlays ...): embed as they are
    if data.run.figures.is_dir():
        for path in sorted(data.run.figures.glob(f"{key}_*.png")):
            if path.name not in made:
                out.append(Figure(f"{path.name} (from RUN/figures)", figs.png_data_uri(path.read_bytes())))
    overlays = data.run.figure_dir(f"overlays_{key}")
    if overlays.is_dir():
        for path in sorted(overlays.glob("*.png"))[:MAX_OVERLAYS]:
            caption = f"{path.name} (from RUN/figures/{overlays.name}; green: reference, orange: predicted)"
            out.append(Figure(caption, figs.png_data_uri(path.read_bytes())))
    return out


def _hardware_text(hardware: object) -> str:
    """``training.json``'s hardware record as one readable line."""
    if not isinstance(hardware, dict):
        return str(hardware)
    device = hardware.get("gpu") or f"CPU ({hardware.get('processor')}, {hardware.get('cpu_count')} cores)"
    return (
        f"{device}; {hardware.get('devices')} device(s) × {hardware.get('num_nodes')} node(s); "
        f"torch threads {hardware.get('torch_threads')}; precision {hardware.get('precision')}"
    )
