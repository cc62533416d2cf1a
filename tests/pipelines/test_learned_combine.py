"""``combine: learned``: features, fitting, storage beside the run, use in the findings, and the schema's rules."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from osteon.pipelines.learned_combine import (
    FEATURES,
    LearnedCombine,
    fit_learned_combine,
    load_finding_threshold,
    load_learned_combine,
    region_features,
    save_finding_threshold,
    save_learned_combine,
)
from osteon.pipelines.schema import PipelineError, parse_pipeline


def test_region_features_summarise_the_regions() -> None:
    x = region_features(np.array([0.2, 0.5, np.nan]), np.array([0.9, 0.3, 0.8]))
    assert dict(zip(FEATURES, x, strict=True)) == pytest.approx(
        {"max_p": 0.5, "mean_p": 0.35, "noisy_or_p": 1 - 0.8 * 0.5, "max_s": 0.9, "log1p_regions": math.log(3)}
    )
    assert np.isnan(region_features(np.array([np.nan]), np.array([0.5]))).all()


def test_fitted_rule_ranks_like_the_truth_and_beats_max_where_counts_matter() -> None:
    rng = np.random.default_rng(0)
    # positives: several moderately suspicious regions; negatives: one region that is sometimes very suspicious
    pos = [region_features(rng.uniform(0.4, 0.7, size=4), rng.uniform(0.5, 1, size=4)) for _ in range(40)]
    neg = [region_features(rng.uniform(0.0, 0.9, size=1), rng.uniform(0, 0.5, size=1)) for _ in range(40)]
    rule = fit_learned_combine(np.array(pos + neg), np.array([1] * 40 + [0] * 40))
    assert (rule.n_images, rule.n_positive, rule.fitted_on) == (80, 40, "val")
    from sklearn.metrics import roc_auc_score

    y = [1] * 40 + [0] * 40
    assert 0 <= rule(np.array([0.6, 0.5]), np.array([0.8, 0.7])) <= 1
    z = np.array(pos + neg) @ np.array(rule.coef) + rule.intercept
    assert roc_auc_score(y, z) > roc_auc_score(y, np.array(pos + neg)[:, 0]) + 0.1


def test_rule_call_is_the_logistic_of_its_features() -> None:
    rule = LearnedCombine(coef=(1.0, 0.0, 0.0, 2.0, 0.0), intercept=-1.0, n_images=10, n_positive=5)
    p, s = np.array([0.5, 0.1]), np.array([0.25, 0.1])
    assert rule(p, s) == pytest.approx(1 / (1 + math.exp(-(0.5 + 2 * 0.25 - 1.0))))
    assert math.isnan(rule(np.array([np.nan]), np.array([0.1])))


def test_too_few_positives_is_a_clear_error() -> None:
    with pytest.raises(PipelineError, match=r"at least 2 positive and 2 negative.*combine: max"):
        fit_learned_combine(np.ones((5, len(FEATURES))), np.array([1, 0, 0, 0, 0]))


def test_rules_are_saved_per_pipeline_stage_beside_the_run(tmp_path: Path) -> None:
    rule = LearnedCombine(coef=(1.0, 2.0, 3.0, 4.0, 5.0), intercept=0.5, n_images=20, n_positive=7)
    save_learned_combine(tmp_path, "cascade", "classify", rule)
    save_learned_combine(tmp_path, "other", "classify", LearnedCombine((0.0,) * 5, 0.0, 4, 2))
    assert load_learned_combine(tmp_path, "cascade", "classify") == rule
    assert load_learned_combine(tmp_path, "cascade", "crop") is None
    assert load_learned_combine(tmp_path / "missing", "cascade", "classify") is None
    save_finding_threshold(tmp_path, "cascade", "fracture", 0.37, 12)
    assert load_finding_threshold(tmp_path, "cascade", "fracture") == pytest.approx(0.37)
    assert load_finding_threshold(tmp_path, "cascade", "other") is None
    assert load_learned_combine(tmp_path, "cascade", "classify") == rule  # both kinds share the file
    (tmp_path / "pipeline_combine.json").write_text("{broken")
    with pytest.raises(PipelineError, match=r"not valid JSON.*pipeline train"):
        load_learned_combine(tmp_path, "cascade", "classify")


def test_learned_is_refused_on_a_whole_image_stage() -> None:
    spec = {"name": "p", "runs": {"a": "a"}, "stages": [{"name": "whole", "run": "a", "combine": "learned"}]}
    with pytest.raises(PipelineError, match="combine: learned weighs the regions of a region stage"):
        parse_pipeline(spec)
