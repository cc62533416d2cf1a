"""Do the maps depend on the model? The cascading model-randomisation test of Adebayo et al. (2018).

Adebayo J, Gilmer J, Muelly M, Goodfellow I, Hardt M, Kim B. *Sanity checks for saliency maps.*
NeurIPS 2018. The weights are re-initialised block by block from the output towards the input and the
map is recomputed after each step. A map that explains the model must change: its Spearman rank
correlation with the original map drops. A map that stays the same (an edge detector) explains the
image, not the model.

A constant map has no rank correlation with anything. When every randomised map (or the original) is
constant, the check cannot tell "decorrelated" from "the method outputs nothing for this layer": its
verdict is ``collapsed``, never ``passed``. Otherwise the verdict reads the last randomised map that is
not constant (maps that turn constant deeper in the cascade are named, not counted as decorrelation).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import torch
from scipy import stats
from torch import nn

from osteon.explain.explainer import covariate_tensor, model_input
from osteon.explain.methods import CamMethod, compute_cams, parse_method, resolve_layer
from osteon.explain.targets import cam_adapter_for

if TYPE_CHECKING:
    from osteon.engine.predictor import Predictor

#: A fully randomised model whose map still correlates above this with the original fails the check.
DEFAULT_MAX_CORRELATION = 0.5

#: ``passed``: the maps decorrelate; ``failed``: they survive randomisation; ``collapsed``: the maps that
#: would decide are constant, so nothing can be concluded.
Verdict = Literal["passed", "failed", "collapsed"]


@dataclass(frozen=True)
class RandomizationStep:
    """The map after re-initialising ``block`` (and every block above it)."""

    block: str
    spearman: float  # rank correlation with the original map; nan when the new map is constant
    map: np.ndarray = field(repr=False)  # (S, S)


@dataclass(frozen=True)
class SanityCheckResult:
    """Outcome of :func:`randomization_sanity_check` for one image and target."""

    image: Path | None
    target: str
    method: str
    layer: str
    original: np.ndarray = field(repr=False)  # (S, S)
    steps: list[RandomizationStep]
    max_correlation: float = DEFAULT_MAX_CORRELATION

    @property
    def original_constant(self) -> bool:
        """True when the trained model's own map is constant (nothing to compare the others with)."""
        return bool(np.ptp(self.original) == 0)

    @property
    def deciding_step(self) -> RandomizationStep | None:
        """The last randomisation step whose map is not constant (``None``: every map is constant)."""
        if self.original_constant:
            return None
        informative = [s for s in self.steps if np.isfinite(s.spearman)]
        return informative[-1] if informative else None

    @property
    def constant_from(self) -> str | None:
        """The block from which every later randomised map is constant (``None`` when the last one is not)."""
        first = None
        for step in reversed(self.steps):
            if np.isfinite(step.spearman):
                break
            first = step.block
        return first

    @property
    def final_correlation(self) -> float:
        """|Spearman| of :attr:`deciding_step`'s map with the original; nan when every map is constant."""
        step = self.deciding_step
        return abs(float(step.spearman)) if step is not None else float("nan")

    @property
    def verdict(self) -> Verdict:
        """``passed`` (decorrelated), ``failed`` (the map survives) or ``collapsed`` (constant maps)."""
        if self.deciding_step is None:
            return "collapsed"
        return "passed" if self.final_correlation < self.max_correlation else "failed"

    @property
    def passed(self) -> bool:
        """True only when a randomised map that is not constant no longer resembles the original."""
        return self.verdict == "passed"

    def describe(self) -> str:
        """One line for people: the verdict in capitals and why.

        Example:
            >>> result.describe()  # doctest: +SKIP
            'PASSED: |ρ| 0.24 after re-initialising head.fc (maps constant from backbone.stages.3 on)'
        """
        if self.original_constant:
            return (
                "COLLAPSED: the trained model's own map is constant, so randomisation has nothing to change. "
                "Fix: explain another image, target, layer (--target-layer) or method."
            )
        step = self.deciding_step
        if step is None:
            return (
                "COLLAPSED: every randomised map is constant; the check cannot tell decorrelation from a method "
                "that outputs nothing here. Fix: try another layer (--target-layer) or method."
            )
        tail = f" (maps constant from {self.constant_from} on)" if self.constant_from else ""
        return f"{self.verdict.upper()}: |ρ| {self.final_correlation:.2f} after re-initialising {step.block}{tail}"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: no NaN (a constant map's correlation is ``None``)."""
        return {
            "image": str(self.image) if self.image else None,
            "target": self.target,
            "method": self.method,
            "layer": self.layer,
            "original_constant": self.original_constant,
            "steps": [
                {"block": s.block, "spearman": _finite_or_none(s.spearman), "constant": not np.isfinite(s.spearman)}
                for s in self.steps
            ],
            "deciding_block": self.deciding_step.block if self.deciding_step else None,
            "constant_from": self.constant_from,
            "final_correlation": _finite_or_none(self.final_correlation),
            "max_correlation": self.max_correlation,
            "verdict": self.verdict,
            "passed": self.passed,
        }


def _finite_or_none(value: float) -> float | None:
    return float(value) if np.isfinite(value) else None


def parameter_blocks(model: nn.Module, *, depth: int = 3) -> list[str]:
    """Blocks that own parameters, from the output towards the input (the cascade's order).

    A block is a module name cut to ``depth`` dotted parts (``backbone.layer4.1``, ``head.fc``,
    ``backbone.stages.3``); order is the reverse of the model's registration order, which for
    ``ImageModel`` puts the head first.
    """
    blocks: list[str] = []
    for name, module in model.named_modules():
        if name and any(True for _ in module.parameters(recurse=False)):
            key = ".".join(name.split(".")[:depth])
            if key not in blocks:
                blocks.append(key)
    return blocks[::-1]


def _reinitialise(model: nn.Module, block: str, generator_seed: int) -> None:
    torch.manual_seed(generator_seed)
    for name, module in model.named_modules():
        if name == block or name.startswith(block + "."):
            if hasattr(module, "reset_parameters") and any(True for _ in module.parameters(recurse=False)):
                module.reset_parameters()  # type: ignore[operator]
            elif any(True for _ in module.parameters(recurse=False)):
                for p in module.parameters(recurse=False):
                    nn.init.normal_(p, std=0.02)


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman rank correlation of two maps (``nan`` when either is constant)."""
    a, b = np.ravel(a), np.ravel(b)
    if np.ptp(a) == 0 or np.ptp(b) == 0:
        return float("nan")
    return float(stats.spearmanr(a, b).statistic)


def randomization_sanity_check(
    predictor: Predictor,
    path: str | Path,
    *,
    method: str | CamMethod = CamMethod.GRADCAM,
    target_class: str | None = None,
    layer: str | None = None,
    seed: int = 0,
    max_correlation: float = DEFAULT_MAX_CORRELATION,
    covariates: dict[str, Any] | None = None,
) -> SanityCheckResult:
    """Cascading randomisation: re-initialise blocks from the top and watch the map decorrelate.

    The predictor's own model is not touched (a copy is randomised).

    Args:
        predictor: The trained model.
        path: An image file.
        method, target_class, layer, covariates: As in :func:`~osteon.explain.explain_image`; the target is
            fixed by the trained model's prediction so every step explains the same class.
        seed: Seed of the re-initialisation.
        max_correlation: ``passed`` requires |Spearman| below this for the last randomised map that is not
            constant (see :attr:`SanityCheckResult.verdict`).

    Returns:
        The :class:`SanityCheckResult` (one step per block, head first).

    Example:
        >>> result = randomization_sanity_check(Predictor.from_run("runs/fa-smoke"), "IMG0000019.jpg")  # doctest: +SKIP
        >>> [round(s.spearman, 2) for s in result.steps], result.verdict  # doctest: +SKIP
        ([0.41, 0.12, 0.05, -0.02, 0.03], 'passed')
    """
    method = parse_method(method)
    adapter = cam_adapter_for(predictor.task.name)
    _, _, x = model_input(predictor, path)
    cov = covariate_tensor(predictor, covariates)
    layer_name = layer or adapter.default_layer(predictor.model, x)
    model = copy.deepcopy(predictor.model).eval()
    module = adapter.cam_model(model, cov)
    with torch.no_grad():
        output = module(x)
    chosen = adapter.targets(predictor.task, output, [target_class] if target_class else None)
    if not chosen:
        from osteon.errors import ConfigError

        raise ConfigError(f"{path}: the model predicts nothing to explain there (e.g. no box); pick another image.")
    target = chosen[0]
    transform = adapter.reshape_transform(model)

    def cam_of(net: nn.Module) -> np.ndarray:
        wrapped = adapter.cam_model(net, cov)
        return compute_cams(
            wrapped, x, [target.fn], layer=resolve_layer(net, layer_name), method=method, reshape_transform=transform
        )[0]

    original = cam_of(model)
    steps = []
    with torch.random.fork_rng(devices=[]):
        for i, block in enumerate(parameter_blocks(model)):
            _reinitialise(model, block, seed + i)
            randomised = cam_of(model)
            steps.append(RandomizationStep(block, spearman(original, randomised), randomised))
    return SanityCheckResult(Path(path), target.name, method.value, layer_name, original, steps, max_correlation)


def sanity_figure(result: SanityCheckResult):  # -> matplotlib Figure
    """A strip of maps: the original, then after each randomisation step, titled with the correlation."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    maps = [("original", result.original, 1.0), *[(s.block, s.map, s.spearman) for s in result.steps]]
    fig, axes = plt.subplots(1, len(maps), figsize=(1.9 * len(maps), 2.3), dpi=100, squeeze=False)
    for ax, (name, values, rho) in zip(axes[0], maps, strict=True):
        ax.imshow(values, cmap="jet", vmin=0, vmax=1)
        ax.set_title(f"{name}\nρ = {rho:.2f}" if np.isfinite(rho) else f"{name}\nconstant map", fontsize=7)
        ax.axis("off")
    verdict = result.verdict.upper()
    detail = f"|ρ| {result.final_correlation:.2f}" if result.deciding_step else "constant maps"
    fig.suptitle(f"Cascading randomisation ({result.method}, target {result.target}): {verdict} ({detail})", fontsize=8)
    fig.tight_layout()
    return fig


def save_sanity_figure(result: SanityCheckResult, path: str | Path) -> Path:
    """Write :func:`sanity_figure` as a PNG."""
    import matplotlib.pyplot as plt

    fig = sanity_figure(result)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path
