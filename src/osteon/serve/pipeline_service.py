"""A pipeline (``osteon.pipelines``) behind the server and the PACS bridge, next to the one-run :class:`ModelService`.

``is_pipeline_file(path)`` tells a pipeline YAML from a run directory by its content (a mapping with ``stages:`` or
``runs:``), never by the suffix. :class:`PipelineService` runs the pipeline on one uploaded image and answers the
pipeline result JSON (schema ``osteon.pipeline.result/1``, ``docs/pipelines.md``) with each image's masks inlined
as base64 PNGs (the runner's mask files live in a temporary folder removed after the request).
"""

from __future__ import annotations

import base64
import tempfile
import threading
from pathlib import Path
from typing import Any

#: Largest file read while sniffing for a pipeline (pipeline files are a few kB).
SNIFF_BYTES = 1_000_000


def is_pipeline_file(path: str | Path) -> bool:
    """True when ``path`` is a YAML file holding a mapping with ``stages:`` or ``runs:`` (a pipeline)."""
    import yaml

    path = Path(path)
    if not path.is_file() or path.stat().st_size > SNIFF_BYTES:
        return False
    try:
        values = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError, OSError):
        return False
    return isinstance(values, dict) and ("stages" in values or "runs" in values)


def one_image_manifest(paths: list[Path], study_id: str = "upload") -> Any:
    """A Manifest of ``paths`` (absolute), one study: what a pipeline runs on for one upload or one PACS study."""
    import warnings

    import pandas as pd

    from osteon.data.manifest import Manifest

    frame = pd.DataFrame({"image": [str(p) for p in paths], "study_id": study_id})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # no patient ids, no split: expected here
        return Manifest(frame, "/", name="upload")


def inline_masks(document: dict[str, Any]) -> dict[str, Any]:
    """Replace each finding's ``mask`` path by ``{"png": base64}`` (class map, value = class index)."""
    for image in document.get("images", []):
        for finding in image.get("findings", []):
            mask = finding.get("mask")
            if isinstance(mask, str) and mask:
                pngs = [base64.b64encode(Path(p).read_bytes()).decode("ascii") for p in mask.split("|")]
                finding["mask"] = {"png": pngs[0]} if len(pngs) == 1 else {"png_per_class": pngs}
    return document


class PipelineService:
    """Run one pipeline file on uploads and describe it.

    Args:
        path: The pipeline YAML (``runs:`` relative to it).
    """

    kind = "pipeline"
    operating_point = None

    def __init__(self, path: str | Path) -> None:
        from osteon.pipelines.runner import Pipeline

        self.path = Path(path)
        self.pipeline = Pipeline.from_file(self.path)
        self._lock = threading.Lock()  # stages share their Predictors: one pipeline run at a time

    def run_images(self, paths: list[Path], *, study_id: str = "upload") -> dict[str, Any]:
        """The result JSON of the pipeline on ``paths`` (one study), masks inlined."""
        with self._lock, tempfile.TemporaryDirectory(prefix="osteon-pipeline-") as work:
            result = self.pipeline.run(one_image_manifest(paths, study_id), work_dir=Path(work))
            return inline_masks(result.to_json())

    def predict_pipeline(self, path: Path) -> dict[str, Any]:
        return self.run_images([path])

    def predict(self, path: Path) -> Any:  # the one-run API: a pipeline has no single typed prediction
        from osteon.errors import ConfigError

        raise ConfigError("a pipeline answers with findings; use predict_pipeline()")

    def explain(self, path: Path) -> Any:
        from osteon.errors import ConfigError

        raise ConfigError("CAMs are available for single runs, not pipelines; serve one of its runs for a CAM")

    def card(self) -> dict[str, Any]:
        """Name, version, every stage with its run, kind, classes and model version, and the findings."""
        import osteon

        spec = self.pipeline.spec
        stages = []
        for name in spec.order():
            stage = spec.stage(name)
            run = self.pipeline.runs[stage.run]
            stages.append(
                {
                    "name": name,
                    "run": stage.run,
                    "run_path": str(run.path),
                    "version": run.version,
                    "kind": run.kind,
                    "classes": list(run.classes),
                    "input": stage.input.source if stage.input else None,
                    "gate": stage.gate.model_dump(by_alias=True) if stage.gate else None,
                }
            )
        return {
            "name": spec.name,
            "task": "pipeline",
            "kind": "pipeline",
            "pipeline_version": spec.version,
            "description": spec.description,
            "stages": stages,
            "findings": [{"name": f.name, "stage": f.stage, "class": f.class_} for f in spec.effective_findings()],
            "classes": [f.name for f in spec.effective_findings()],
            "metrics": {},
            "version": {"osteon": osteon.__version__},
        }
