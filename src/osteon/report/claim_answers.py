"""Answers to CLAIM 2024 items that the run directory can give, each with the file it came from."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from osteon.report.claim import ReportFacts
from osteon.report.crossval import claim_ensemble_answer
from osteon.report.dataset_card import Flow
from osteon.report.rundata import RunData
from osteon.report.sections import (
    augmentation,
    best_epoch,
    epochs_run,
    initialisation,
    loss_description,
    model_description,
    software_versions,
    training_summary,
)
from osteon.report.tables import fmt


@dataclass
class Findings:
    """What the report found, beyond the run's files (passed in by the builder)."""

    flow: Flow
    subgroup_columns: list[str] = field(default_factory=list)
    shortcuts: list[str] = field(default_factory=list)
    compared_with: list[str] = field(default_factory=list)
    readers: int = 0
    sanity: dict[str, Any] | None = None
    cam_method: str = "gradcam"
    patients_in_two_splits: int | None = None


def claim_facts(data: RunData, found: Findings) -> ReportFacts:
    facts = ReportFacts()
    cfg, state, task = data.config, data.state, data.task_state
    key = data.primary_key
    result = data.metrics.get(key, {})
    dataset = state.get("dataset", {})
    flow = found.flow

    facts.set(
        7,
        f"{dataset.get('name', data.manifest.name)} at {dataset.get('path', cfg.get('data'))}.",
        "state.json › dataset",
        partial=True,
    )
    facts.set(
        8,
        f"All {flow.total} images of the Manifest with a value in {task.get('target')!r}; "
        f"excluded: {flow.no_label} without "
        f"a label, {flow.unreadable} unreadable (excluded.csv lists each with its reason).",
        "manifest.csv, excluded.csv",
        partial=True,
    )
    prep = state.get("preprocessing", {})
    facts.set(
        9,
        f"Grey values scaled to [0, 1] (DICOM rescale and VOI LUT applied, MONOCHROME1 inverted), letterboxed to "
        f"{prep.get('image_size')}×{prep.get('image_size')} px keeping the aspect ratio, normalised with mean "
        f"{prep.get('mean')} and sd {prep.get('std')}.",
        "state.json › preprocessing",
    )
    facts.set(
        12,
        (
            f"Images without a reference value ({flow.no_label}) and unreadable images ({flow.unreadable}) "
            "were excluded, "
            "not imputed"
            + (
                f"; missing covariates are encoded as missing ({', '.join(cfg['covariates'])})."
                if cfg.get("covariates")
                else "."
            )
        ),
        "excluded.csv, state.json › covariates",
    )
    split = state.get("split", {})
    facts.set(
        19,
        f"{_split_text(split)}. Train {flow.splits['train']}, validation {flow.splits['val']}, "
        f"test {flow.splits['test']} images. Class imbalance: {cfg.get('class_weighting', 'none')} weighting.",
        "state.json › split, manifest.csv, config.yaml",
    )
    ids = data.manifest.has("patient_id")
    if ids:
        leak = found.patients_in_two_splits
        answer = "Patient level: splits group images by patient id" + (
            f" and by identical content; {leak} patients appear in two splits."
            if leak
            else " and by identical content; no patient is in two splits."
        )
    else:
        answer = (
            "Image level: the data have no patient ids; splits group only byte-identical duplicates. "
            "Leakage between images of one patient cannot be excluded."
        )
    facts.set(20, answer, "manifest.csv")
    facts.set(
        21,
        f"{flow.evaluated.get(key, flow.splits['test'])} test {data.kind.evaluated_unit(data)}; "
        "no power calculation is recorded in the run.",
        f"metrics.json › {key}",
        partial=True,
    )
    facts.set(
        22,
        f"{model_description(data)}; {data.n_parameters} parameters; input 1×{prep.get('image_size')}×"
        f"{prep.get('image_size')}; {data.kind.outputs_text(data)}; "
        "global average pooling and a linear head"
        + (f" fused with covariates {cfg['covariates']}" if cfg.get("covariates") else "")
        + ".",
        "config.yaml, model.pt",
    )
    versions = software_versions(data)
    if versions:
        facts.set(23, f"Osteon with {versions}.", "model.pt › meta.versions")
    facts.set(24, initialisation(data).capitalize() + ".", "config.yaml › pretrained")
    facts.set(
        25,
        f"Loss: {loss_description(data)}. {training_summary(data)}. Augmentation: {augmentation(data)}. "
        "Training loss and the validation score were logged every epoch (learning curves in section 2).",
        "config.yaml, logs/metrics.csv",
    )
    best = best_epoch(data)
    facts.set(
        26,
        f"The epoch with the best {data.monitor_text()} was kept"
        + (f" (epoch {best} of {epochs_run(data) or cfg.get('epochs')})." if best is not None else "."),
        "training.json, checkpoints/best.ckpt",
    )
    facts.set(27, *claim_ensemble_answer(data))  # ensembles and cross-validation folds (report/crossval.py)
    metric_names = data.kind.claim_metrics(result)  # multi-task: per target
    facts.set(
        28,
        f"{', '.join(metric_names)} on the {key} split; no comparison with published models.",
        f"metrics.json › {key}",
        partial=True,
    )
    ci = result.get("ci", {})
    tests = (
        "; paired tests against " + ", ".join(found.compared_with) + " (DeLong for AUC, paired bootstrap otherwise)"
        if found.compared_with
        else ""
    )
    facts.set(
        29,
        f"95% {ci.get('method', 'percentile bootstrap')} intervals resampled by {ci.get('resampled_by', '?')} "
        f"({ci.get('n_resamples', '?')} resamples){tests}.",
        f"metrics.json › {key} › ci",
    )
    if found.subgroup_columns:
        facts.set(
            30,
            f"Subgroup analysis by {', '.join(found.subgroup_columns)} (section 5); no perturbation analysis.",
            "report section 5",
            partial=True,
        )
    if found.sanity:
        s = found.sanity
        verdict = s.get("verdict", "passed" if s["passed"] else "failed")
        facts.set(
            31,
            (
                f"{found.cam_method} class-activation maps (pytorch-grad-cam) at layer {s['layer']}; "
                "validated with the cascading "
                f"model-randomisation test (Adebayo et al. 2018): rank correlation with the original map after full "
                f"randomisation {fmt(s['final_correlation'], 2)} ({verdict})."
            ),
            "report section 5",
        )
    else:
        facts.set(
            31,
            f"{found.cam_method} class-activation maps (pytorch-grad-cam) for the gallery cases.",
            "report section 5",
            partial=True,
        )
    facts.set(32, _internal_testing(data, key), "logs/metrics.csv, metrics.json")
    if data.external_keys:
        facts.set(
            33,
            "External testing on "
            + "; ".join(f"{k}: {data.metrics[k].get('data', k)}" for k in data.external_keys)
            + ".",
            "metrics.json",
        )
    else:
        facts.set(33, "No external test set was evaluated; the reason is to be given.", "metrics.json", partial=True)
    facts.set(
        35,
        f"{flow.total} images{f' of {flow.patients} patients' if flow.patients else ''}; "
        f"{flow.no_label + flow.unreadable} "
        f"excluded; flow diagram in section 1.",
        "manifest.csv, excluded.csv",
    )
    covariate_text = (
        "covariates per split in section 1" if found.subgroup_columns else "no demographic columns in the data"
    )
    bias = f"; possible shortcuts: {'; '.join(found.shortcuts)}" if found.shortcuts else ""
    facts.set(36, f"Labels per split and {covariate_text}{bias}.", "manifest.csv", partial=not found.subgroup_columns)
    facts.set(
        37,
        f"Test performance with CIs (section 3){', per subgroup (section 5)' if found.subgroup_columns else ''}"
        f"{', compared with human readers' if found.readers else ''}.",
        f"metrics.json › {key}",
    )
    facts.set(
        38,
        "Estimates with 95% CIs" + (", ROC curve with its CI band." if data.kind.has_roc(result) else "."),
        f"metrics.json › {key}",
    )
    facts.set(
        39,
        "Confusion matrix and examples of correct and incorrect predictions with their class-activation maps "
        "(section 5).",
        "predictions_*.csv",
    )
    facts.set(
        43,
        f"Model weights and configuration: {data.run.model.name} in the run directory; software: Osteon "
        f"{data.model_meta.get('versions', {}).get('osteon', '')} (Apache-2.0). "
        "Access conditions for data and model are to be stated.",
        "model.pt",
        partial=True,
    )
    return facts


def _internal_testing(data: RunData, key: str) -> str:
    result = data.metrics.get(key, {})
    parts = [f"Held-out {key} split of the same dataset"]
    if not data.log.empty and "val/score" in data.log and data.log["val/score"].notna().any():
        name, direction = data.monitor()
        best = float(data.log["val/score"].max())  # val/score is logged higher-is-better (−MAE for MAE)
        parts.append(f"best validation {name} {fmt(best if direction == 'max' else -best)}")
    val = dict(data.kind.headline_metrics(data.metrics["val"])) if "val" in data.metrics else {}
    for headline, value in data.kind.headline_metrics(result):  # multi-task: one per target
        parts.append(f"test {headline} {fmt(value)}")
        if isinstance(val.get(headline), dict):
            parts.append(f"validation {headline} {fmt(val[headline])}")
    return "; ".join(parts) + "."


def _split_text(split: dict[str, Any]) -> str:
    source, reason = str(split.get("source", "not recorded")), str(split.get("reason", ""))
    return reason if reason.startswith(source) else f"{source}: {reason}"
