"""Publication figures: vector copies, class names on confusion matrices, Brier/ECE, Bland–Altman limits, PR, FROC."""

from __future__ import annotations

import numpy as np
import pytest

from osteon.metrics import brier_score_loss, expected_calibration_error
from osteon.report.figures import bland_altman_figure, calibration_figure, save_figure
from osteon.report.pubfigs import confusion_names, froc_figure, pr_figure


def texts(fig) -> str:
    found = [t.get_text() for ax in fig.axes for t in ax.texts]
    for ax in fig.axes:
        legend = ax.get_legend()
        if legend is not None:
            found += [t.get_text() for t in legend.get_texts()]
    return " | ".join(found)


def test_every_saved_figure_has_vector_copies_with_embedded_fonts(tmp_path) -> None:
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 80)
    fig = pr_figure(y, rng.random(80) * 0.5 + y * 0.4, title="PR")
    assert "AP" in texts(fig) and "prevalence" in texts(fig)
    path = save_figure(fig, tmp_path / "test_pr.png")
    pdf, svg = path.with_suffix(".pdf").read_bytes(), path.with_suffix(".svg").read_text()
    assert b"/FontFile2" in pdf  # TrueType (Type 42) fonts embedded, as journals require
    assert "<text" in svg  # text stays text in the SVG (editable)
    assert save_figure(pr_figure(y, rng.random(80), title="x"), tmp_path / "raw.png", vector=False)
    assert not (tmp_path / "raw.svg").exists()


def test_confusion_names() -> None:
    binary = {"confusion_matrix": [[5, 1], [2, 7]], "positive_class": "1"}
    assert confusion_names(binary, {"class_names": ["0", "1"], "target": "fractured"}) == [
        "fractured = 0",
        "fractured = 1",
    ]
    named = {"confusion_matrix": [[5, 1], [2, 7]], "positive_class": "fractured"}
    assert confusion_names(named, {"class_names": ["fractured", "non_fractured"]}) == ["non_fractured", "fractured"]
    multi = {"confusion_matrix": np.eye(3).tolist(), "class_names": ["a", "b", "c"]}
    assert confusion_names(multi, {}) == ["a", "b", "c"]


def test_calibration_shows_brier_and_ece_and_a_histogram() -> None:
    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, 200)
    score = np.clip(y * 0.6 + rng.random(200) * 0.4, 0, 1)
    fig = calibration_figure(y, score, title="cal")
    shown = texts(fig)
    assert (
        f"Brier {brier_score_loss(y, score):.3f}" in shown
        and f"ECE {expected_calibration_error(y, score):.3f}" in shown
    )
    assert len(fig.axes) == 2 and len(fig.axes[1].patches) > 0  # the histogram of predicted probabilities


def test_bland_altman_states_bias_and_limits() -> None:
    truth = np.linspace(0, 10, 50)
    prediction = truth + 1.0 + np.sin(np.arange(50))
    diff = prediction - truth
    fig = bland_altman_figure(truth, prediction, title="BA")
    shown = texts(fig)
    assert f"bias {diff.mean():.3g}" in shown
    assert f"+1.96 SD {diff.mean() + 1.96 * diff.std(ddof=1):.3g}" in shown


@pytest.mark.filterwarnings("ignore:image-level AUC")
def test_froc_curve_from_a_detection_report() -> None:
    from osteon.data.boxes import ImageBoxes
    from osteon.metrics import detection_report

    truth = [ImageBoxes(np.array([[0, 0, 10, 10.0]]), np.array([0])) for _ in range(6)]
    preds = [
        ImageBoxes(np.array([[0, 0, 10, 10.0], [50, 50, 60, 60]]), np.array([0, 0]), np.array([0.2 + 0.1 * i, 0.9]))
        for i in range(6)
    ]
    result = detection_report(truth, preds, class_names=["fracture"], n_resamples=20)
    curve = result["froc"]["curve"]
    assert len(curve["fp_per_image"]) == len(curve["sensitivity"]) > 1
    assert np.all(np.diff(curve["fp_per_image"]) >= 0) and curve["sensitivity"][-1] == pytest.approx(1.0)
    fig = froc_figure(result["froc"], title="FROC")
    assert fig is not None and fig.axes[0].get_xscale() == "log"
    assert froc_figure({"curve": {}}, title="none") is None
