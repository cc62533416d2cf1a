"""The pipeline file: a pydantic-validated YAML schema of runs, stages, gates, crops and findings.

A pipeline names trained runs and wires them into stages. A stage reads the whole image, or regions that an
earlier stage found (a crop around each predicted box or mask, tiles along a mask); the next model's
Predictor resamples each region to its own input (letterbox to its ``image_size``), so no stage needs to know
another's input size. A gate stage (a quality classifier) rejects images before every other stage. Findings name
what the pipeline reports (one entry per finding per image and per study). See ``docs/pipelines.md``.

Validation happens in two steps: :func:`load_pipeline` checks the file's shape (unknown keys, a stage reading from
a stage that does not exist, a cycle); :func:`check_outputs` checks the runs' kinds of output against how they are
used (a crop from a classifier, a gate on a detector, a finding class the model does not know).
"""

from __future__ import annotations

import hashlib
from difflib import get_close_matches
from graphlib import CycleError, TopologicalSorter
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from osteon.errors import ConfigError

Combine = Literal["max", "mean", "any"]
#: Regions → image may also be ``learned`` (:mod:`osteon.pipelines.learned_combine`, fitted on validation).
RegionCombine = Literal["max", "mean", "any", "learned"]
#: The kinds of output a stage can have (from the run's Task ``prediction_type``).
OUTPUT_KINDS = ("class", "grade", "value", "boxes", "mask")


class PipelineError(ConfigError):
    """A pipeline file is malformed or does not fit its runs; the message names the file, the key and the fix."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class CropSpec(_Strict):
    """A crop around each region (predicted box, or mask component's bounding box), in original pixels.

    ``margin`` enlarges each side by that fraction of the box's width/height; ``min_size`` (pixels) enlarges small
    boxes around their centre; ``square`` makes the crop square (the longer side) before clipping to the image.
    """

    margin: float = Field(0.2, ge=0, le=5)
    min_size: int = Field(0, ge=0)
    square: bool = True
    top_k: int = Field(3, ge=1, description="At most this many regions per image (highest scores first)")
    min_score: float = Field(0.25, ge=0, le=1, description="Boxes below this score are not cropped")
    classes: list[str] | None = Field(None, description="Box labels / mask classes to crop (default: all)")


class TileSpec(_Strict):
    """Square tiles of ``size`` original pixels every ``stride`` pixels, kept where the mask covers ``min_coverage``."""

    size: int = Field(ge=4)
    stride: int | None = Field(None, ge=1)
    min_coverage: float = Field(0.05, gt=0, le=1)
    max_tiles: int = Field(64, ge=1)
    classes: list[str] | None = None


class InputSpec(_Strict):
    """Where a stage's images come from: regions of an earlier stage, cropped or tiled."""

    source: str = Field(alias="from", description="Name of the stage whose boxes or mask give the regions")
    crop: CropSpec | None = None
    tile: TileSpec | None = None

    @model_validator(mode="after")
    def _one_way(self) -> InputSpec:
        if (self.crop is None) == (self.tile is None):
            raise ValueError("give exactly one of crop: or tile: (how the regions of the source stage are cut)")
        return self


class GateSpec(_Strict):
    """Pass an image on when the probability of ``class_`` is at least ``min_probability``."""

    class_: str = Field(alias="class")
    min_probability: float = Field(0.5, ge=0, le=1)


class StageTrainSpec(_Strict):
    """How ``osteon pipeline train`` makes this stage's run: crops from truth or from the source's predictions."""

    crops_from: Literal["truth", "predictions"] = "truth"
    label: str = Field("label", description="Manifest column of the image-level label given to each crop")
    negatives_per_image: int = Field(1, ge=0, description="truth: random crops of images with no box")
    negative: str | None = Field(
        None, description="predictions: label of a crop that misses every true box (default: leave such crops out)"
    )
    options: dict[str, Any] = Field(default_factory=dict, description="TrainConfig options (task, model, epochs...)")


class StageSpec(_Strict):
    """One model applied to the whole image or to regions of an earlier stage."""

    name: str
    run: str = Field(description="Key of `runs:`")
    input: InputSpec | None = None
    gate: GateSpec | None = None
    combine: RegionCombine = Field(
        "max", description="Regions → image: max, mean, any (≥ threshold) of the score, or learned (fitted on val)"
    )
    empty_score: float = Field(0.0, ge=0, le=1, description="Score of an image with no region")
    train: StageTrainSpec | None = None


class FindingSpec(_Strict):
    """A reported finding: a score and decision per image and per study from one stage."""

    name: str
    stage: str
    class_: str | None = Field(None, alias="class", description="Class whose probability is the finding's score")
    threshold: float | None = Field(None, ge=0, le=1, description="Default: the run's operating point, else 0.5")
    study_combine: Combine = "max"
    truth: str | None = Field(None, description="Manifest column of the truth (evaluate)")
    positive: str | None = Field(None, description="Value of `truth` that counts as positive (default: '1' / class)")


class PipelineSpec(_Strict):
    """A whole pipeline file. ``runs`` maps names to run directories (relative to the file)."""

    name: str
    version: str = "1"
    description: str = ""
    runs: dict[str, str]
    stages: list[StageSpec] = Field(min_length=1)
    findings: list[FindingSpec] = Field(default_factory=list)
    versions: dict[str, str] = Field(
        default_factory=dict, description="Run key → model version the pipeline was saved with (checked on load)"
    )
    #: Filled by :func:`load_pipeline`: the folder that relative run paths are read from.
    base: str = Field(".", exclude=True)

    @model_validator(mode="after")
    def _names(self) -> PipelineSpec:
        names = [s.name for s in self.stages]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"stage names must be unique; repeated: {', '.join(duplicates)}")
        for stage in self.stages:
            if stage.run not in self.runs:
                raise ValueError(f"stage {stage.name!r}: unknown run {stage.run!r}{_close(stage.run, self.runs)}")
            if stage.input is not None and stage.input.source not in names:
                raise ValueError(
                    f"stage {stage.name!r}: reads from unknown stage {stage.input.source!r}"
                    f"{_close(stage.input.source, names)}"
                )
            if stage.gate is not None and stage.input is not None:
                raise ValueError(f"stage {stage.name!r}: a gate judges whole images; remove input: or gate:")
            if stage.combine == "learned" and stage.input is None:
                raise ValueError(
                    f"stage {stage.name!r}: combine: learned weighs the regions of a region stage; a whole-image "
                    "stage has one score. Fix: remove combine: or give the stage an input: with crop:/tile:"
                )
        for finding in self.findings:
            if finding.stage not in names:
                raise ValueError(
                    f"finding {finding.name!r}: unknown stage {finding.stage!r}{_close(finding.stage, names)}"
                )
        try:
            self.order()
        except CycleError as exc:
            raise ValueError(f"stages form a cycle: {' → '.join(reversed(exc.args[1]))}") from None
        return self

    def stage(self, name: str) -> StageSpec:
        return next(s for s in self.stages if s.name == name)

    def order(self) -> list[str]:
        """Stage names in an order where every source comes first (gates first, then as listed where free)."""
        graph = {s.name: ({s.input.source} if s.input else set()) for s in self.stages}
        sorter = TopologicalSorter(graph)
        sorter.prepare()
        rank = {s.name: (s.gate is None, i) for i, s in enumerate(self.stages)}
        out: list[str] = []
        while sorter.is_active():
            ready = sorted(sorter.get_ready(), key=rank.__getitem__)
            out.extend(ready)
            sorter.done(*ready)
        return out

    def frozen(self, versions: dict[str, str]) -> dict[str, Any]:
        """This pipeline as a mapping with absolute run paths and the runs' versions: saved beside a result so that
        running the saved file reproduces it, and refuses to run when a run's model has changed."""
        values = self.model_dump(mode="json", by_alias=True, exclude_none=True)
        values["runs"] = {key: str(self.run_path(key).resolve()) for key in self.runs}
        values["versions"] = dict(versions)
        return values

    def run_path(self, key: str) -> Path:
        path = Path(self.runs[key])
        return path if path.is_absolute() else Path(self.base) / path

    def effective_findings(self) -> list[FindingSpec]:
        """The findings, or one per stage that no other stage reads from (and that is not a gate)."""
        if self.findings:
            return self.findings
        sources = {s.input.source for s in self.stages if s.input}
        return [FindingSpec(name=s.name, stage=s.name) for s in self.stages if s.name not in sources and not s.gate]


def _close(name: str, options: Any) -> str:
    close = get_close_matches(name, list(options), n=3)
    known = ", ".join(sorted(options))
    return f" (did you mean {', '.join(close)}?; known: {known})" if close else f" (known: {known})"


def load_pipeline(path: str | Path) -> PipelineSpec:
    """Read and validate a pipeline YAML file (shape, names, cycles); runs are checked by :func:`check_outputs`."""
    path = Path(path)
    if not path.is_file():
        raise PipelineError(f"{path}: pipeline file not found.")
    try:
        values = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise PipelineError(f"{path}: not valid YAML ({exc}).") from None
    if not isinstance(values, dict):
        raise PipelineError(f"{path}: expected a mapping with name:, runs: and stages:.")
    return parse_pipeline(values, source=path, base=path.resolve().parent)


def parse_pipeline(
    values: dict[str, Any], *, source: str | Path = "<pipeline>", base: str | Path = "."
) -> PipelineSpec:
    """Validate a pipeline given as a mapping (the YAML's content)."""
    try:
        spec = PipelineSpec.model_validate(values)
    except ValidationError as exc:
        raise PipelineError(
            f"Invalid pipeline {source}: " + "; ".join(_explain(e) for e in exc.errors()) + "."
        ) from None
    spec.base = str(base)
    return spec


def _explain(err: Any) -> str:
    key = ".".join(str(p) for p in err["loc"]) or "pipeline"
    if err["type"] == "extra_forbidden":
        return f"unknown key {key!r}"
    if err["type"] == "missing":
        return f"{key!r} is required"
    message = str(err["msg"]).removeprefix("Value error, ")
    return f"{key}: {message}" if err["loc"] else message


# ---------------------------------------------------------------------------------------------- run kinds
def check_outputs(spec: PipelineSpec, kinds: dict[str, tuple[str, list[str]]], *, source: str = "pipeline") -> None:
    """Check how stages use each other's outputs.

    Args:
        spec: The validated pipeline.
        kinds: Per run key: ``(kind, class_names)`` with kind one of :data:`OUTPUT_KINDS`.
        source: Named in the messages (the file).

    Raises:
        PipelineError: a crop or tile from a stage without boxes/masks, tiles from boxes, a gate that is not a
            classifier, a class the run does not know.
    """
    problems: list[str] = []
    for stage in spec.stages:
        kind, classes = kinds[stage.run]
        if stage.gate is not None:
            if kind != "class":
                problems.append(f"stage {stage.name!r} gates on run {stage.run!r}, which outputs {kind}, not classes")
            elif stage.gate.class_ not in classes:
                problems.append(f"stage {stage.name!r}: gate class {stage.gate.class_!r} is not one of {classes}")
        if stage.input is not None:
            src = spec.stage(stage.input.source)
            src_kind, src_classes = kinds[src.run]
            if src_kind not in ("boxes", "mask"):
                problems.append(
                    f"stage {stage.name!r} cuts regions from {src.name!r}, whose run {src.run!r} outputs {src_kind}; "
                    "regions come from a detect (boxes) or segment (mask) run"
                )
            elif stage.input.tile is not None and src_kind != "mask":
                problems.append(f"stage {stage.name!r} tiles along {src.name!r}, which outputs boxes; use crop:")
            wanted = (stage.input.crop or stage.input.tile).classes or []  # type: ignore[union-attr]
            unknown = [c for c in wanted if c not in src_classes]
            if unknown and src_kind in ("boxes", "mask"):
                problems.append(
                    f"stage {stage.name!r}: classes {unknown} are not outputs of {src.name!r} ({src_classes})"
                )
    for finding in spec.effective_findings():
        kind, classes = kinds[spec.stage(finding.stage).run]
        if finding.class_ is not None and kind in ("class", "grade", "boxes", "mask") and finding.class_ not in classes:
            problems.append(f"finding {finding.name!r}: class {finding.class_!r} is not one of {classes}")
    if problems:
        raise PipelineError(f"{source}: " + "; ".join(problems) + ".")


def model_version(run_dir: Path) -> str:
    """A run's version: the first 12 hex digits of the SHA-256 of its ``model.pt``."""
    digest = hashlib.sha256()
    with open(run_dir / "model.pt", "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()[:12]
