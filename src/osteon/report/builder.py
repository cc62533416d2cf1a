"""``write_report``: one self-contained HTML study report (and a model card) from a run directory."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jinja2

import osteon
from osteon.errors import ConfigError
from osteon.report import figures as figs
from osteon.report.claim import claim_table, fill_claim
from osteon.report.claim_answers import Findings, claim_facts
from osteon.report.compare import compare_runs
from osteon.report.dataset_card import covariate_table, findings_table, flow_counts, source_lines, split_label_table
from osteon.report.gallery import build_gallery
from osteon.report.model_card import render_model_card, write_model_card
from osteon.report.progress import ReportProgress
from osteon.report.readers import read_readers
from osteon.report.rundata import RunData, usable
from osteon.report.sections import Figure, method_figures, method_tables, result_section
from osteon.report.subgroups import shortcut_warnings, subgroup_columns, subgroup_table
from osteon.report.tables import Table, fmt, key_value_table


@dataclass(frozen=True)
class ReportOptions:
    """Options of :func:`write_report` (CLI flags of ``osteon report`` have the same names)."""

    compare: tuple[str, ...] = ()
    readers: str | None = None
    external: tuple[str, ...] = ()
    subgroups: tuple[str, ...] = ()
    gallery_size: int = 3
    cam_method: str = "gradcam"
    sanity_check: bool = True
    n_resamples: int = 1000
    seed: int = 0


def template_environment() -> jinja2.Environment:
    """Jinja2 with HTML autoescaping (every cell is text), templates from ``osteon/report/templates``."""
    return jinja2.Environment(
        loader=jinja2.PackageLoader("osteon.report", "templates"),
        autoescape=jinja2.select_autoescape(["html", "html.j2"], default_for_string=False),
        undefined=jinja2.StrictUndefined,
        trim_blocks=False,
        lstrip_blocks=False,
    )


def write_report(
    run: str | Path,
    *,
    out: str | Path | None = None,
    compare: Sequence[str | Path] = (),
    readers: str | Path | None = None,
    external: Sequence[str] = (),
    subgroups: Sequence[str] = (),
    gallery_size: int = 3,
    cam_method: str = "gradcam",
    sanity_check: bool = True,
    n_resamples: int = 1000,
    seed: int = 0,
    progress: bool = True,
) -> Path:
    """Write ``RUN/report.html`` (self-contained) and ``RUN/model_card.md``; return the report's path.

    Everything comes from the run directory: config, state, Manifest and split, exclusions, metrics
    and predictions of every evaluation, logs, figures, and the model (for the CAM gallery).

    Args:
        run: A run directory that ``osteon evaluate`` has evaluated.
        out: Where to write the HTML (default ``RUN/report.html``).
        compare: Other runs evaluated on the same cases: paired tests (DeLong for AUC, paired bootstrap).
        readers: CSV of human readers' calls (columns ``reader``, ``case``, ``call``), on the primary evaluation.
        external: metrics.json keys of external evaluations to present (default: every non-split key).
        subgroups: Extra Manifest columns for the subgroup analysis (age, sex, body part ... are used when present).
        gallery_size: Cases per gallery group (0: no gallery).
        cam_method: CAM method for the gallery.
        sanity_check: Run the model-randomisation check of the maps on one gallery image.
        n_resamples, seed: Bootstrap settings for subgroup intervals and paired tests.
        progress: Show the step being built on a progress display on stderr (terminals only).

    Raises:
        RunDirError: not a run, or never evaluated.
        ConfigError: unknown external key; runs to compare were not evaluated on the same cases.
        DatasetFormatError: a bad readers CSV (the message names the row).

    Example:
        >>> write_report("runs/fa-smoke")  # doctest: +SKIP
        PosixPath('runs/fa-smoke/report.html')
    """
    options = ReportOptions(
        tuple(map(str, compare)),
        str(readers) if readers else None,
        tuple(external),
        tuple(subgroups),
        gallery_size,
        cam_method,
        sanity_check,
        n_resamples,
        seed,
    )
    with ReportProgress(enabled=progress, total=2) as steps:
        steps.step("reading the run directory")
        data = RunData.load(run)
        generated = datetime.now(tz=UTC).strftime("%Y-%m-%d %H:%M UTC")
        context, flow, shortcuts = build_context(data, options, generated, progress=steps)
        steps.step("writing the report and the model card")
        html = template_environment().get_template("report.html.j2").render(**context)
        target = Path(out) if out is not None else data.run.report_html
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(html, encoding="utf-8")
        write_model_card(data.run.model_card, render_model_card(data, flow, shortcuts, generated))
    return target


def build_context(
    data: RunData, options: ReportOptions, generated: str, *, progress: ReportProgress | None = None
) -> tuple[dict[str, Any], Any, list[str]]:
    """Everything the template renders, plus the flow and shortcut texts the model card reuses.

    ``progress`` (optional) is told each step as it starts.
    """
    steps = progress or ReportProgress(enabled=False)
    key = data.primary_key
    unknown = [k for k in options.external if k not in data.metrics]
    if unknown:
        raise ConfigError(
            f"{data.run.path}: no evaluation {unknown} in metrics.json (it has {list(data.metrics)}). "
            f"Fix: run `osteon evaluate {data.run.path} --data OTHER_DATASET` and pass the key it prints."
        )
    keys = [
        key,
        *[
            k
            for k in data.metrics
            if k != key and (k in ("val", "train") or not options.external or k in options.external)
        ],
    ]
    gallery_steps = 2 if options.gallery_size > 0 else 0
    steps.add(4 + bool(options.readers) + len(keys) + len(options.compare) + gallery_steps)

    steps.step("dataset card and data checks")
    flow = flow_counts(data)
    findings, findings_summary = findings_table(data)
    columns = subgroup_columns(data, options.subgroups)
    shortcuts = [w.message for w in shortcut_warnings(data, columns)]
    dataset = {
        "sources": key_value_table("Sources", source_lines(data)),
        "split_source": data.state.get("split", {}).get("source", "not recorded"),
        "split_reason": data.state.get("split", {}).get("reason", ""),
        "flow": flow,
        "counts": split_label_table(data),
        "covariates": covariate_table(data),
        "findings": findings,
        "findings_summary": findings_summary,
    }
    steps.step("method and learning curves")
    method = {"tables": method_tables(data), "figures": method_figures(data)}

    if options.readers:
        steps.step("readers' calls")
    reader_table, reader_marks, n_readers = _readers(data, key, options.readers)
    reader_study = _reader_study(data, key, options, reader_marks)  # with/without AI, OR test, kappas
    results = []
    for k in keys:
        steps.step(f"results of {k}")
        results.append(result_section(data, k, readers=reader_marks if k == key else ()))
    comparisons = []
    for other in options.compare:
        steps.step(f"paired comparison with {Path(other).name}")
        comparisons.append(_compare(data, other, key, options))
    steps.step(f"subgroups of {key}")
    subgroups = subgroup_table(data, key, columns, n_resamples=min(options.n_resamples, 500), seed=options.seed)

    predictor = None
    if options.gallery_size > 0:
        steps.step(f"gallery: {options.cam_method} maps")
        predictor = _predictor(data)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        gallery, shown = build_gallery(data, key, predictor, per_group=options.gallery_size, method=options.cam_method)
    if gallery_steps:
        steps.step("sanity check of the maps")
    sanity = _sanity(predictor, shown, options) if options.sanity_check and predictor is not None and shown else None
    gallery_note = (
        f"{options.cam_method} maps (pytorch-grad-cam) at the model's feature layer, over each image as displayed; "
        "binary tasks show the evidence for the positive class in every group, other tasks for the predicted class."
        if predictor is not None
        else "No model.pt (or its images) to compute maps: cases are listed without maps."
    )
    steps.step("CLAIM checklist")
    found = Findings(
        flow=flow,
        subgroup_columns=columns,
        shortcuts=shortcuts,
        compared_with=[Path(c).name for c in options.compare],
        readers=n_readers,
        sanity=sanity["result"] if sanity else None,
        cam_method=options.cam_method,
        patients_in_two_splits=_patients_in_two_splits(data),
    )
    claim = claim_table(fill_claim(claim_facts(data, found)))
    top = []
    if not data.manifest.has("patient_id"):
        top.append(
            "The data have no patient ids: the split is by image, so one patient's images can be on both sides "
            "(leakage); intervals resample images, not patients."
        )
    top += [f"Possible shortcut — {s}" for s in shortcuts[:3]]
    context = {
        "meta": {
            "title": f"Osteon study report — {data.name}",
            "run": str(data.run.path),
            "task": data.task,
            "model": data.config.get("model", "?"),
            "created": data.created(),
            "generated": generated,
            "version": osteon.__version__,
        },
        "top_warnings": top,
        "dataset": dataset,
        "method": method,
        "results": results,
        "readers": reader_table,
        "reader_study": reader_study,
        "comparisons": comparisons,
        "shortcuts": shortcuts,
        "subgroups": subgroups,
        "gallery": gallery,
        "gallery_note": gallery_note,
        "sanity": sanity,
        "claim": claim,
        "model_card": data.run.model_card.name,
    }
    return context, flow, shortcuts


def _readers(data: RunData, key: str, path: str | None) -> tuple[Table | None, list[dict[str, Any]], int]:
    if path is None:
        return None, [], 0
    predictions = data.predictions.get(key)
    if predictions is None:
        raise ConfigError(f"{data.run.path}: no predictions for {key!r} to compare readers with.")
    rows = usable(predictions)
    calls = read_readers(path, rows, data)
    table, points = data.kind.reader_table(data, key, calls, rows)
    return table, points, int(calls.frame["reader"].nunique())


def _reader_study(data: RunData, key: str, options: ReportOptions, marks: list[dict[str, Any]]) -> list[Table]:
    """The reader-study tables; the numbers also go to ``RUN/reader_study.json``, the figures to ``RUN/figures``."""
    if options.readers is None or key not in data.predictions:
        return []
    from osteon.report.mrmc import reader_study, reader_study_tables, write_reader_figures

    rows = usable(data.predictions[key])
    calls = read_readers(options.readers, rows, data)
    study = reader_study(data, key, calls, rows, n_resamples=min(options.n_resamples, 1000), seed=options.seed)
    data.run.write_json(data.run.path / "reader_study.json", study)
    write_reader_figures(data, key, calls, rows, marks)
    return reader_study_tables(study)


def _compare(data: RunData, other: str, key: str, options: ReportOptions) -> Table:
    return compare_runs(data, RunData.load(other), key=key, n_resamples=options.n_resamples, seed=options.seed)


def _predictor(data: RunData) -> Any:
    if not data.run.model.is_file():
        return None
    from osteon.engine.predictor import Predictor

    try:
        return Predictor.from_run(data.run.path)
    except Exception:  # a model this Osteon cannot rebuild: report without maps
        return None


def _sanity(predictor: Any, shown: list[Path], options: ReportOptions) -> dict[str, Any] | None:
    from osteon.explain.sanity import randomization_sanity_check, sanity_figure

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            result = randomization_sanity_check(predictor, shown[0], method=options.cam_method, seed=options.seed)
    except Exception:
        return None
    rows = [[s.block, fmt(s.spearman, 2) if s.spearman == s.spearman else "constant map"] for s in result.steps]
    table = Table(
        f"Cascading model randomisation (Adebayo et al. 2018) on {shown[0].name}",
        ["blocks re-initialised (from the output down to)", "Spearman ρ with the original map"],
        rows,
        note=(
            f"{result.describe()} (threshold {result.max_correlation}). A map that does not change when the "
            "weights are randomised explains the image, not the model."
        ),
    )
    return {
        "table": table,
        "figure": Figure("Maps after each randomisation step", figs.data_uri(sanity_figure(result))),
        "result": result.to_dict(),
    }


def _patients_in_two_splits(data: RunData) -> int | None:
    frame = data.manifest.frame
    if "patient_id" not in frame or "split" not in frame or not frame["patient_id"].notna().any():
        return None
    per_patient = frame.dropna(subset=["patient_id", "split"]).groupby("patient_id")["split"].nunique()
    return int((per_patient > 1).sum())
