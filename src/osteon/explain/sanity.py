"""Do the maps depend on the model? The cascading model-randomisation test of Adebayo et al. (2018).

Adebayo J, Gilmer J, Muelly M, Goodfellow I, Hardt M, Kim B. *Sanity checks for saliency maps.*
NeurIPS 2018. The weights are re-initialised block by block from the output towards the input and the
map is recomputed after each step. A map that explains the model must change: its Spearman rank
correlation with the original map drops. A map that stays the same (an edge detector) explains the
image, not the model.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

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
    def final_correlation(self) -> float:
        """|Spearman| after the last (full) randomisation; a constant map counts as 0 (no structure left)."""
        value = self.steps[-1].spearman if self.steps else 1.0
        return 0.0 if not np.isfinite(value) else abs(float(value))

    @property
    def passed(self) -> bool:
        """True when the fully randomised model's map no longer resembles the original."""
        return self.final_correlation < self.max_correlation

    def to_dict(self) -> dict[str, Any]:
        return {
            "image": str(self.image) if self.image else None,
            "target": self.target,
            "method": self.method,
            "layer": self.layer,
            "steps": [{"block": s.block, "spearman": s.spearman} for s in self.steps],
            "final_correlation": self.final_correlation,
            "max_correlation": self.max_correlation,
            "passed": self.passed,
        }


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
        max_correlation: ``passed`` requires |Spearman| below this after full randomisation.

    Returns:
        The :class:`SanityCheckResult` (one step per block, head first).

    Example:
        >>> result = randomization_sanity_check(Predictor.from_run("runs/fa-smoke"), "IMG0000019.jpg")  # doctest: +SKIP
        >>> [round(s.spearman, 2) for s in result.steps], result.passed  # doctest: +SKIP
        ([0.41, 0.12, 0.05, -0.02, 0.03], True)
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
    fig.suptitle(
        f"Cascading randomisation ({result.method}, target {result.target}): "
        f"{'PASSED' if result.passed else 'FAILED'} (final |ρ| {result.final_correlation:.2f})",
        fontsize=8,
    )
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
