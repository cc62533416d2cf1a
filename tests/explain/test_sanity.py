"""The cascading model-randomisation check (Adebayo et al. 2018): maps must depend on the weights."""

from __future__ import annotations

import numpy as np
import torch

from osteon.explain import parameter_blocks, randomization_sanity_check, save_sanity_figure
from osteon.explain.sanity import spearman


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
