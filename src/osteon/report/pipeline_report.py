"""``write_pipeline_report``: the HTML report of a pipeline evaluation folder (``osteon pipeline evaluate --out``).

Everything comes from the folder's files: ``metrics.json`` (per finding: image- and study-level evaluation with
95% CIs, errors attributed to stages), ``pipeline.yaml`` (the frozen pipeline: stages, runs, model versions),
``result.json`` (what each run outputs), ``model_card.md``, and each stage's run directory (``state.json``: task and
target) where it still exists. The page reuses the study report's tables, figures and style.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

import osteon
from osteon.errors import RunDirError
from osteon.report import figures as figs
from osteon.report.sections import Figure
from osteon.report.tables import Table, fmt, label, metric_tables

#: Files that make a folder a pipeline evaluation.
PIPELINE_FILES = ("metrics.json", "pipeline.yaml")
#: Metrics shown in the end-to-end table (each with its 95% CI).
HEADLINE = ("auc", "sensitivity", "specificity", "ppv", "npv", "accuracy")


def is_pipeline_folder(path: str | Path) -> bool:
    """True for a folder ``osteon pipeline evaluate`` wrote (``metrics.json`` beside ``pipeline.yaml``)."""
    folder = Path(path)
    return all((folder / name).is_file() for name in PIPELINE_FILES) and not (folder / "config.yaml").is_file()


def write_pipeline_report(folder: str | Path, *, out: str | Path | None = None) -> Path:
    """Write ``FOLDER/report.html`` (self-contained) from a pipeline evaluation folder; return its path.

    Raises:
        RunDirError: the folder is not a pipeline evaluation (no ``metrics.json`` and ``pipeline.yaml``).

    Example:
        >>> write_pipeline_report("pipeline_eval")  # doctest: +SKIP
        PosixPath('pipeline_eval/report.html')
    """
    folder = Path(folder)
    if not is_pipeline_folder(folder):
        missing = [name for name in PIPELINE_FILES if not (folder / name).is_file()]
        raise RunDirError(
            f"{folder} is not a pipeline evaluation folder (missing {', '.join(missing) or 'nothing'}; a run directory "
            "has config.yaml). Fix: run `osteon pipeline evaluate PIPELINE.yaml DATA --out FOLDER` first, or pass "
            "a run directory."
        )
    scores = json.loads((folder / "metrics.json").read_text())
    spec = yaml.safe_load((folder / "pipeline.yaml").read_text()) or {}
    result = json.loads((folder / "result.json").read_text()) if (folder / "result.json").is_file() else {}
    card = (folder / "model_card.md").read_text() if (folder / "model_card.md").is_file() else ""
    findings = [finding_section(name, entry) for name, entry in scores.items()]
    context = {
        "meta": {
            "title": f"Osteon pipeline report — {spec.get('name', folder.name)} {spec.get('version', '')}".strip(),
            "folder": str(folder),
            "generated": datetime.now(tz=UTC).strftime("%Y-%m-%d %H:%M UTC"),
            "version": osteon.__version__,
            "description": spec.get("description") or "",
        },
        "style": _style(),
        "summary": end_to_end_table(scores),
        "attribution": attribution_table(scores),
        "findings": findings,
        "stages": stage_table(spec, result),
        "finding_specs": finding_spec_table(spec),
        "model_card": card,
    }
    from osteon.report.builder import template_environment

    html = template_environment().get_template("pipeline_report.html.j2").render(**context)
    target = Path(out) if out is not None else folder / "report.html"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(html, encoding="utf-8")
    return target


def end_to_end_table(scores: dict[str, Any]) -> Table:
    """One row per finding and level (image, study): n, positives and the headline metrics with 95% CIs."""
    rows = []
    for name, entry in scores.items():
        for level in ("image", "study"):
            rep = entry.get(level)
            if isinstance(rep, dict):
                rows.append(
                    [name, level, fmt(rep.get("n")), fmt(rep.get("n_positive")), *[fmt(rep.get(k)) for k in HEADLINE]]
                )
    return Table(
        "End-to-end performance (the pipeline's final decision against the truth)",
        ["finding", "level", "n", "positives", *[f"{label(k)} (95% CI)" for k in HEADLINE]],
        rows,
        note="95% percentile bootstrap intervals resampled by patient; sensitivity and specificity at each "
        "finding's threshold. Images a gate rejected or where no region was cut score the stage's empty score, so "
        "every image counts.",
    )


def attribution_table(scores: dict[str, Any]) -> Table:
    """Errors (false positives and negatives) per finding, stage and reason."""
    rows = []
    for name, entry in scores.items():
        errors = entry.get("errors") or []
        for stage, reasons in (entry.get("attribution") or {}).items():
            for reason, n in reasons.items():
                kinds = [e.get("kind") for e in errors if e.get("stage") == stage and e.get("reason") == reason]
                rows.append([name, stage, reason, fmt(int(n)), fmt(kinds.count("FP")), fmt(kinds.count("FN"))])
        localiser = entry.get("localiser")
        if isinstance(localiser, dict):
            rows.append(
                [name, str(localiser.get("stage")), "region on the lesion (positives)",
                 f"{localiser.get('with_region_on_lesion')} of {localiser.get('positive_images')}", "—", "—"]
            )  # fmt: skip
    return Table(
        "Stage attribution of the errors",
        ["finding", "stage", "reason", "errors", "false positives", "false negatives"],
        rows,
        note="Each wrong final decision is blamed on the first stage that caused it: a gate that rejected a "
        "positive image, a localiser that cut no region (or none on the lesion), or the finding's own stage.",
    )


def finding_section(name: str, entry: dict[str, Any]) -> dict[str, Any]:
    """Tables and figures of one finding: per level, the full metrics, the ROC curve and the confusion matrix."""
    tables: list[Table] = []
    figures: list[Figure] = []
    for level in ("image", "study"):
        rep = entry.get(level)
        if not isinstance(rep, dict):
            continue
        tables += metric_tables(rep, title=f"{name} — {level} level", skip=("confusion_matrix",))
        if isinstance(rep.get("confusion_matrix"), list) and len(rep["confusion_matrix"]) == 2:
            from osteon.report.tables import two_by_two

            table = two_by_two(rep["confusion_matrix"], name)
            table.caption = f"{name} — {level} level: 2×2 table at the threshold"
            tables.append(table)
        curve = rep.get("roc_curve")
        if isinstance(curve, dict) and curve.get("fpr"):
            figures.append(Figure(f"{name}: ROC — {level} level (AUC {fmt(rep.get('auc'))})", _roc(curve, name, level)))
    return {"name": name, "tables": tables, "figures": figures, "n_unreadable": entry.get("n_unreadable", 0)}


def stage_table(spec: dict[str, Any], result: dict[str, Any]) -> Table:
    """The model card's stages: every stage with its run directory, model version, task, output, input and gate."""
    runs = spec.get("runs", {})
    versions = spec.get("versions", {})
    outputs = result.get("runs", {})
    rows = []
    for i, stage in enumerate(spec.get("stages", []), start=1):
        key = stage.get("run")
        path = str(runs.get(key, "?"))
        source = stage.get("input") or {}
        how = "whole image" if not source else f"{'crop' if source.get('crop') else 'tiles'} from {source.get('from')}"
        gate = stage.get("gate") or {}
        gate_text = f"P({gate.get('class')}) ≥ {gate.get('min_probability')}" if gate else ""
        run_out = outputs.get(key, {})
        rows.append(
            [str(i), str(stage.get("name")), path, str(versions.get(key, run_out.get("version", "?"))),
             _run_task(path), str(run_out.get("kind", "?")), how, gate_text]
        )  # fmt: skip
    return Table(
        "Stages (in running order)",
        ["#", "stage", "run directory", "model version", "task — target", "output", "input", "gate"],
        rows,
        note="From pipeline.yaml (frozen with the runs' model versions: running it again reproduces the result) "
        "and each run's state.json.",
    )


def finding_spec_table(spec: dict[str, Any]) -> Table:
    rows = [
        [str(f.get("name")), str(f.get("stage")), str(f.get("class") or "—"), str(f.get("truth") or "—"),
         str(f.get("positive") or "—"), str(f.get("study_combine") or "—")]
        for f in spec.get("findings", [])
    ]  # fmt: skip
    header = ["finding", "stage", "class", "truth column", "positive value", "study combine"]
    return Table("Findings", header, rows)


def _run_task(path: str) -> str:
    state_file = Path(path) / "state.json"
    if not state_file.is_file():
        return "run directory not found"
    try:
        task = json.loads(state_file.read_text()).get("task", {})
    except (OSError, ValueError):
        return "unreadable state.json"
    return f"{task.get('name', '?')} — {task.get('target', '?')}"


def _roc(curve: dict[str, Any], name: str, level: str) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(4, 4), dpi=110)
    ax.plot([0, 1], [0, 1], ls=":", c="grey")
    ax.step(curve["fpr"], curve["tpr"], where="post")
    ax.set(xlabel="1 − specificity", ylabel="sensitivity", title=f"ROC — {name} — {level}", xlim=(0, 1), ylim=(0, 1))
    return figs.data_uri(fig)


def _style() -> str:
    """The study report's CSS (one look for every Osteon report)."""
    from osteon.report.builder import template_environment

    env = template_environment()
    source, _, _ = env.loader.get_source(env, "report.html.j2")  # type: ignore[union-attr]
    match = re.search(r"<style>(.*?)</style>", source, re.S)
    return match.group(1) if match else ""
