"""Confidence intervals of Osteon's mAP@0.5 ratio to the strongest rival, from the seed folders' test predictions.

Every model of every seed is scored on the *same* bootstrap resamples of the test images
(:func:`osteon.metrics.resampled_detection_scores`): the interval of a seed's ratio is the percentile interval of
Osteon's mAP@0.5 over the strongest rival's *on each resample*, and the interval of the ratio of the seed means
averages each model over the seeds within a resample first. They answer "would another draw of test images keep
the ratio above 2×?" for these trained models; how much a ratio moves with the training seed is what the seeds
themselves show.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from osteon.data.boxes import ImageBoxes, parse_box_column
from osteon.metrics import resampled_detection_scores
from osteon.metrics.detection_compare import ratio_interval


def model_folder(label: str) -> str:
    """The folder a model's run lies in under a seed's folder (Osteon's label also names its architecture)."""
    return "osteon" if label.startswith("osteon") else label


def class_names(run: Path) -> list[str]:
    """The classes a run was trained on (its ``state.json``)."""
    return json.loads((run / "state.json").read_text())["task"]["class_names"]


def test_boxes(run: Path) -> tuple[list[str], list[ImageBoxes], list[ImageBoxes]]:
    """``(images, truth, predictions)`` of a run's ``predictions_test.csv``, sorted by image path."""
    index = {name: k for k, name in enumerate(class_names(run))}
    frame = pd.read_csv(run / "predictions_test.csv").sort_values("image")
    images = frame["image"].astype(str).tolist()
    truth = parse_box_column(frame["truth"], images, class_index=index)
    return images, truth, parse_box_column(frame["pred_boxes"], images, class_index=index, scored=True)


def ratio_intervals(
    summaries: list[dict[str, Any]], *, n_resamples: int = 1000, seed: int = 0
) -> dict[str, Any] | None:
    """Per seed and for the seed means: Osteon's mAP@0.5 over the strongest rival's, with its 95 % interval.

    ``summaries`` are the seeds' ``summary.json`` (the first row is Osteon). ``None`` when a seed folder's test
    predictions are gone (summaries kept without their runs).
    """
    labels = [r["model"] for r in summaries[0]["rows"]]
    seeds = [str(s["recipe"]["seed"]) for s in summaries]
    runs = {(sd, m): Path(s["out"]) / model_folder(m) for sd, s in zip(seeds, summaries, strict=True) for m in labels}
    if not all((run / "predictions_test.csv").is_file() for run in runs.values()):
        return None
    predictions, images, truth = {}, None, []
    for (sd, m), run in runs.items():
        these, truth, predictions[f"{sd}/{m}"] = test_boxes(run)
        if images is not None and these != images:
            raise SystemExit(f"{run}: not the test images of {summaries[0]['out']}; seeds must share the split")
        images = these
    scores = resampled_detection_scores(
        truth, predictions, n_classes=len(class_names(next(iter(runs.values())))), n_resamples=n_resamples, seed=seed
    )
    point = {m: np.array([scores.point[f"{sd}/{m}"]["map50"] for sd in seeds]) for m in labels}  # (S,)
    values = {m: np.stack([scores.resampled[f"{sd}/{m}"]["map50"] for sd in seeds]) for m in labels}  # (S, B)
    osteon, rivals = labels[0], labels[1:]

    def over_strongest(pick: Any) -> dict[str, Any]:  # pick: the seed axis reduced to one value (a seed, the mean)
        return ratio_interval(
            float(pick(point[osteon])),
            max(float(pick(point[r])) for r in rivals),
            pick(values[osteon]),
            np.max([pick(values[r]) for r in rivals], axis=0),
        )

    return {
        "method": (
            f"percentile interval over {n_resamples} bootstrap resamples of the {len(truth)} test images, the same "
            "resamples for every model and seed; per resample Osteon's mAP@0.5 over the highest rival mAP@0.5 "
            "(seed means: each model averaged over the seeds first)"
        ),
        "per_seed": {sd: over_strongest(lambda v, i=i: v[i]) for i, sd in enumerate(seeds)},
        "of_seed_means": over_strongest(lambda v: v.mean(axis=0)),
    }


def ratio_text(interval: dict[str, Any]) -> str:
    """``2.29 (1.12–5.31)``; ``inf`` where a rival scored 0 on a resample."""
    return " ".join(
        [f"{interval['estimate']:.2f}", f"({interval['low']:.2f}–{interval['high']:.2f})".replace("inf", "∞")]
    )
