"""The pipeline's model card (Markdown): every stage with its run, version and task, and the evaluation with CIs."""

from __future__ import annotations

from typing import Any

from osteon.pipelines.results import PipelineResult


def _ci(entry: dict[str, Any] | None) -> str:
    if not entry or entry.get("estimate") is None:
        return "–"
    return f"{entry['estimate']:.3f} ({entry['low']:.3f}–{entry['high']:.3f})"


def pipeline_card(result: PipelineResult, scores: dict[str, Any] | None = None) -> str:
    """Markdown: the stages in running order (run path, version, output kind, what feeds them), findings, metrics."""
    spec = result.pipeline.spec
    lines = [f"# Pipeline {spec.name} (version {spec.version})", ""]
    if spec.description:
        lines += [spec.description, ""]
    lines += [
        "## Stages",
        "",
        "| # | stage | run | model version | output | input | gate |",
        "|---|---|---|---|---|---|---|",
    ]
    for i, name in enumerate(spec.order(), start=1):
        stage = spec.stage(name)
        run = result.pipeline.runs[stage.run]
        if stage.input is None:
            source = "whole image"
        else:
            how = "crop" if stage.input.crop is not None else "tiles"
            source = f"{how} from {stage.input.source}"
        gate = f"P({stage.gate.class_}) ≥ {stage.gate.min_probability}" if stage.gate else ""
        lines.append(f"| {i} | {name} | `{run.path}` | {run.version} | {run.kind} | {source} | {gate} |")
    lines += ["", "## Findings", "", "| finding | stage | class | threshold | study combine |", "|---|---|---|---|---|"]
    for finding in spec.effective_findings():
        run = result.pipeline.runs[spec.stage(finding.stage).run]
        threshold = finding.threshold if finding.threshold is not None else run.threshold
        cls = finding.class_ or run.positive_class or ""
        lines.append(f"| {finding.name} | {finding.stage} | {cls} | {threshold:.3f} | {finding.study_combine} |")
    lines += ["", f"Images: {len(result.manifest)}; studies: {result.studies()['study'].nunique()}.", ""]
    if scores:
        lines += [
            "## Evaluation (95% bootstrap CIs, resampled by patient)",
            "",
            "| finding | level | n | AUC | sensitivity | specificity |",
            "|---|---|---|---|---|---|",
        ]
        for name, entry in scores.items():
            for level in ("image", "study"):
                rep = entry.get(level)
                if rep:
                    lines.append(
                        f"| {name} | {level} | {rep['n']} | {_ci(rep['auc'])} | {_ci(rep['sensitivity'])} | "
                        f"{_ci(rep['specificity'])} |"
                    )
        lines += ["", "### Errors by stage", ""]
        for name, entry in scores.items():
            for stage, reasons in entry["attribution"].items():
                lines.append(f"- {name}: {stage}: " + ", ".join(f"{r} {n}" for r, n in reasons.items()))
            if entry.get("localiser"):
                loc = entry["localiser"]
                lines.append(
                    f"- {name}: localiser {loc['stage']} put a region on the lesion in {loc['with_region_on_lesion']} "
                    f"of {loc['positive_images']} positive images"
                )
    return "\n".join(lines) + "\n"
