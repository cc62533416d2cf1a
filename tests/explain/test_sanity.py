"""The cascading model-randomisation check (Adebayo et al. 2018): maps must depend on the weights."""

from __future__ import annotations

import json

import numpy as np
import torch
from torch import nn

from osteon.explain import parameter_blocks, randomization_sanity_check, save_sanity_figure
from osteon.explain import sanity as sanity_module
from osteon.explain.sanity import RandomizationStep, SanityCheckResult, spearman


def test_blocks_cascade_from_the_head_down(square_model):
    predictor, _ = square_model
    blocks = parameter_blocks(predictor.model)
    assert blocks == ["head.fc", "backbone.stages.3", "backbone.stages.2", "backbone.stages.1", "backbone.stages.0"]


def test_randomising_the_trained_model_decorrelates_its_map(square_model, tmp_path):
    predictor, tests = square_model
    before = {k: v.clone() for k, v in predictor.model.state_dict().items()}
    result = randomization_sanity_check(predictor, tests[0][0], target_class="1", seed=0)
    assert [s.block for s in result.steps] == parameter_blocks(predictor.model)
    assert result.original.shape == (64, 64)
    # re-initialising only the head already changes the map a lot, and the full cascade leaves nothing of it
    assert np.isnan(result.steps[0].spearman) or result.steps[0].spearman < 0.9
    assert result.final_correlation < 0.5 and result.passed
    for key, value in predictor.model.state_dict().items():  # the predictor's own model is untouched
        torch.testing.assert_close(value, before[key])
    figure = save_sanity_figure(result, tmp_path / "sanity.png")
    assert figure.stat().st_size > 1000


def test_control_same_weights_give_the_same_map(square_model):
    predictor, tests = square_model
    first = randomization_sanity_check(predictor, tests[1][0], target_class="1").original
    again = randomization_sanity_check(predictor, tests[1][0], target_class="1").original
    assert spearman(first, again) > 0.999


def test_a_map_that_survives_randomisation_fails(brightness_predictor, tmp_path):
    """When re-initialisation leaves the map as it was (here: it cannot change the weights), the check fails."""
    from .conftest import write_png

    image = np.zeros((64, 64), dtype=np.float32)
    image[20:40, 10:30] = 1.0
    image[5:12, 45:60] = 0.6
    path = write_png(tmp_path / "x.png", image)
    model = brightness_predictor.model
    model.backbone.conv.reset_parameters = lambda: None  # deep copies keep these no-op re-initialisations
    model.head.fc.reset_parameters = lambda: None
    result = randomization_sanity_check(brightness_predictor, path, target_class="1")
    assert result.final_correlation > 0.9 and not result.passed


def _result(original: np.ndarray, *steps: tuple[str, np.ndarray]) -> SanityCheckResult:
    return SanityCheckResult(
        None, "1", "gradcam", "layer", original, [RandomizationStep(b, spearman(original, m), m) for b, m in steps]
    )


def test_constant_maps_are_collapsed_never_passed():
    """Defect 8: constant maps have no correlation; the check used to count them as |ρ| 0 and say PASSED."""
    rng = np.random.default_rng(0)
    original, other, flat = rng.random((8, 8)), rng.random((8, 8)), np.zeros((8, 8))
    every_map_flat = _result(original, ("head", flat), ("stage", flat))
    assert every_map_flat.verdict == "collapsed" and not every_map_flat.passed
    assert np.isnan(every_map_flat.final_correlation) and every_map_flat.constant_from == "head"
    assert every_map_flat.describe().startswith("COLLAPSED: every randomised map is constant")
    flat_original = _result(flat, ("head", other))
    assert flat_original.verdict == "collapsed" and "own map is constant" in flat_original.describe()
    # decorrelated first, then flat: the last map that is not constant decides, and the flat tail is named
    then_flat = _result(original, ("head", other), ("stage", flat))
    assert then_flat.verdict == "passed" and then_flat.deciding_step.block == "head"
    assert then_flat.constant_from == "stage" and "constant from stage on" in then_flat.describe()
    survives = _result(original, ("head", original + 0.01))
    assert survives.verdict == "failed" and survives.constant_from is None


def test_sanity_json_holds_no_nan():
    """Defect 8: the JSON held bare NaN (invalid JSON) for constant maps; now null, with the verdict."""
    original, flat = np.random.default_rng(1).random((8, 8)), np.zeros((8, 8))
    payload = _result(original, ("head", flat), ("stage", flat)).to_dict()
    text = json.dumps(payload, allow_nan=False)  # raises on NaN/inf
    back = json.loads(text)
    assert back["verdict"] == "collapsed" and back["passed"] is False and back["final_correlation"] is None
    assert back["steps"][0] == {"block": "head", "spearman": None, "constant": True}


def test_a_model_whose_randomised_maps_are_all_constant_is_collapsed(brightness_predictor, tmp_path, monkeypatch):
    """End to end: re-initialising to zeros leaves a model whose Grad-CAM is flat at every step."""
    from .conftest import write_png

    image = np.zeros((64, 64), dtype=np.float32)
    image[20:40, 10:30] = 1.0
    path = write_png(tmp_path / "x.png", image)

    def zero_block(model: nn.Module, block: str, seed: int) -> None:
        for name, parameter in model.named_parameters():
            if name.startswith(block + "."):
                nn.init.zeros_(parameter)

    monkeypatch.setattr(sanity_module, "_reinitialise", zero_block)
    result = randomization_sanity_check(brightness_predictor, path, target_class="1")
    assert np.ptp(result.original) > 0
    assert all(np.ptp(s.map) == 0 for s in result.steps)
    assert result.verdict == "collapsed" and not result.passed
    json.dumps(result.to_dict(), allow_nan=False)
    figure = save_sanity_figure(result, tmp_path / "sanity.png")
    assert figure.stat().st_size > 1000
