"""MRMC statistics checked against a published worked example and against definitions.

Van Dyke et al. (1993), cine vs spin-echo MRI for aortic dissection: 5 readers × 114 cases (69 normal, then 45
abnormal), 5-point ratings. Ratings from RJafroc's ``inst/extdata/datasets/VD.lrc`` (dataset02); expected values
from the hand calculation of RJafroc's Obuchowski–Rockette chapter (Chakraborty, "The RJafroc Book", OR
applications, dataset02): AUCs, variance components, F, ddf, p and the CIs.
"""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import cohen_kappa_score, roc_auc_score

from osteon.metrics import MetricInputError
from osteon.metrics.mrmc import (
    cohen_kappa_ci,
    empirical_auc,
    fleiss_kappa,
    fleiss_kappa_ci,
    jackknife_aucs,
    obuchowski_rockette,
)

# reader 0..4, each: modality 0 (spin echo), modality 1 (cine); one digit per case 0..113
VAN_DYKE = [
    "122151111111411111111131311214111113121211233131133111111221111332111555545554555434245555555154454553555115554451",
    "333222223213122222211111421312214323123122233111333113412421241442111535555554555544335555555355355554455535555551",
    "232222222322522232222222422223222222222222222222222222222432232222222535555542555442225555555243354552425225555352",
    "322222223222222122221222322222212212222231223222222222322322222222122535555552555344245455545252355532425525555552",
    "222235112242422232221232411322112224121412112222223211211221151421212545555555555542355555555252255552555225555552",
    "242222322211132222121121411512112122212221132111233113221232341242121525555555555354145555555253355543555534555551",
    "111111311111111111112111211112111111111111111111331111111111111311111555555555555555155555555554544553555125555555",
    "221111312111122111211111321212111122112111112121212211111212111323211545555554555455555555555455445555555535555555",
    "351211112221211122113221111211211231221113332111211111111341231212113525255551545452235555554144322151515115553552",
    "223122221222111222122212322321212222112121132122332122221222231233111525455555455343335555555251332532545533555553",
]


def van_dyke() -> tuple[np.ndarray, np.ndarray]:
    ratings = np.array([[int(c) for c in row] for row in VAN_DYKE], dtype=float).reshape(5, 2, 114)
    return np.r_[np.zeros(69), np.ones(45)].astype(int), ratings.transpose(1, 0, 2)  # (modality, reader, case)


def test_van_dyke_matches_the_published_or_analysis() -> None:
    y, x = van_dyke()
    result = obuchowski_rockette(y, x, modalities=["SE", "CINE"])
    np.testing.assert_allclose(
        result.auc,
        [[0.9196, 0.8588, 0.9039, 0.9731, 0.8298], [0.9478, 0.9053, 0.9217, 0.9994, 0.9300]],
        atol=5e-5,
    )
    np.testing.assert_allclose(result.modality_auc, [0.8970, 0.9408], atol=5e-5)
    assert result.ms_t == pytest.approx(0.0047962, abs=5e-8)
    assert result.ms_tr == pytest.approx(5.5103062e-4, rel=1e-6)
    assert result.var == pytest.approx(8.0228827e-4, rel=1e-6)
    assert result.cov1 == pytest.approx(3.4661371e-4, rel=1e-6)
    assert result.cov2 == pytest.approx(3.4407483e-4, rel=1e-6)
    assert result.cov3 == pytest.approx(2.3902837e-4, rel=1e-6)
    assert result.f == pytest.approx(4.456, abs=5e-4)
    assert result.ddf == pytest.approx(15.26, abs=5e-3)
    assert result.p == pytest.approx(0.05167, abs=5e-5)
    (diff,) = result.differences
    assert diff["estimate"] == pytest.approx(-0.0438, abs=5e-5)
    assert diff["low"] == pytest.approx(-0.0879595, abs=1e-6)
    assert diff["high"] == pytest.approx(0.0003589, abs=1e-6)
    # fixed readers: chi-square 5.476, p 0.01928, CI (-0.08049, -0.007115)
    assert result.chi2_fixed_readers == pytest.approx(5.476, abs=5e-4)
    assert result.p_fixed_readers == pytest.approx(0.01928, abs=5e-5)
    assert diff["low_fixed_readers"] == pytest.approx(-0.08049, abs=5e-5)
    assert diff["high_fixed_readers"] == pytest.approx(-0.007115, abs=5e-6)
    ci = {c["modality"]: c for c in result.modality_ci}
    assert (ci["SE"]["low"], ci["SE"]["high"]) == pytest.approx((0.8252, 0.9689), abs=5e-5)
    assert (ci["CINE"]["low"], ci["CINE"]["high"]) == pytest.approx((0.8941, 0.9875), abs=5e-5)
    last = result.reader_differences[-1]
    assert (last["estimate"], last["low"], last["high"]) == pytest.approx((-0.1002, -0.1865, -0.01381), abs=5e-5)
    assert result.to_dict()["auc"]["CINE"]["r3"] == pytest.approx(0.9994, abs=5e-5)


def test_auc_and_jackknife_match_definitions() -> None:
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 40)
    s = rng.integers(1, 6, 40).astype(float) + y  # ties on purpose
    assert empirical_auc(y, s) == pytest.approx(roc_auc_score(y, s))
    brute = [roc_auc_score(np.delete(y, k), np.delete(s, k)) for k in range(40)]
    np.testing.assert_allclose(jackknife_aucs(y, s), brute)


def test_bad_shapes_are_refused() -> None:
    y, x = van_dyke()
    with pytest.raises(MetricInputError, match="2 modalities"):
        obuchowski_rockette(y, x[:1])
    with pytest.raises(MetricInputError, match="missing ratings"):
        bad = x.copy()
        bad[0, 0, 3] = np.nan
        obuchowski_rockette(y, bad)


def test_kappas() -> None:
    rng = np.random.default_rng(1)
    a = rng.integers(0, 3, 200)
    b = np.where(rng.random(200) < 0.7, a, rng.integers(0, 3, 200))
    ci = cohen_kappa_ci(a, b, n_resamples=200)
    assert ci.estimate == pytest.approx(cohen_kappa_score(a, b))
    assert ci.low < ci.estimate < ci.high
    qw = cohen_kappa_ci(a, b, weights="quadratic", n_resamples=50)
    assert qw.estimate == pytest.approx(cohen_kappa_score(a, b, weights="quadratic"))
    # Fleiss reduces to perfect agreement = 1 and equals the textbook example (Fleiss 1971 style, 2 raters)
    assert fleiss_kappa(np.stack([a, a, a], axis=1)) == pytest.approx(1.0)
    # Wikipedia's worked example of Fleiss' kappa: 10 subjects, 14 raters, 5 categories -> 0.210
    table = [
        [0, 0, 0, 0, 14],
        [0, 2, 6, 4, 2],
        [0, 0, 3, 5, 6],
        [0, 3, 9, 2, 0],
        [2, 2, 8, 1, 1],
        [7, 7, 0, 0, 0],
        [3, 2, 6, 3, 0],
        [2, 5, 3, 2, 2],
        [6, 5, 2, 1, 0],
        [0, 2, 2, 3, 7],
    ]
    ratings = np.array([np.repeat(np.arange(5), row) for row in table])
    assert fleiss_kappa(ratings) == pytest.approx(0.210, abs=5e-4)
    assert fleiss_kappa_ci(ratings, n_resamples=100).low <= 0.210
