"""The reader study of ``osteon report --readers``: readers with and without AI, their AUCs, the OR test, kappas.

From a readers CSV (``reader``, ``case``, ``call`` and optionally ``condition`` and ``score``, see
:mod:`osteon.report.readers`) and the model's predictions on the same cases:

* **Per reading** (reader × condition): AUC with DeLong's 95% CI, from the reader's scores (or calls alone).
* **With and without AI** (≥ 2 conditions, ≥ 2 readers, on the cases every reader read in every condition):
  the Obuchowski–Rockette test of the reader-averaged AUCs (random readers and cases; Hillis ddf), the CI of
  the difference, and per-reader differences (:func:`osteon.metrics.mrmc.obuchowski_rockette`).
* **Agreement**: each reading's Cohen's kappa with the model's decisions (binary: at the operating point chosen
  on validation; grades: quadratic-weighted) and Fleiss' kappa among the readers of each condition, with
  bootstrap 95% CIs by patient.

Everything is also returned as a JSON-ready dict (:func:`reader_study`), written to ``RUN/reader_study.json``.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from osteon.report.readers import ReaderCalls
from osteon.report.rundata import RunData
from osteon.report.tables import Table, fmt


def reader_study(
    data: RunData, key: str, calls: ReaderCalls, rows: pd.DataFrame, *, n_resamples: int = 1000, seed: int = 0
) -> dict[str, Any]:
    """Every number of the reader study as a dict (``readings``, ``or_test``, ``model_kappa``, ``inter_reader``)."""
    from osteon.metrics import delong_ci
    from osteon.metrics.mrmc import cohen_kappa_ci, fleiss_kappa_ci, obuchowski_rockette

    state = data.task_state
    names = [str(n) for n in state.get("class_names", [])]
    positive = state.get("positive_class")
    binary = len(names) == 2 and positive is not None
    ordinal = bool(getattr(data.kind, "ordinal", False))
    frame = calls.frame
    truth_of = dict(zip(rows["case"], rows["truth"].astype(str), strict=True))
    groups_of = dict(zip(rows["case"], rows["patient_id"].astype(str), strict=True)) if "patient_id" in rows else {}
    model_code = _model_codes(data, key, rows, names, positive, binary)
    index = {n: i for i, n in enumerate(names)}
    code = (lambda c: int(c)) if binary else (lambda c: index[str(c)])
    out: dict[str, Any] = {"key": key, "binary": binary, "readings": [], "model_kappa": [], "inter_reader": []}
    weights = "quadratic" if ordinal else None
    for label in calls.readers:
        mine = frame[frame["label"] == label]
        cases = list(mine["case"])
        groups = [groups_of.get(c, c) for c in cases]
        reading: dict[str, Any] = {
            "reading": label,
            "reader": str(mine["reader"].iloc[0]),
            "condition": str(mine["condition"].iloc[0]),
            "cases": len(cases),
        }
        calls_code = np.array([code(c) for c in mine["call"]])
        if binary:
            y = np.array([int(truth_of[c] == positive) for c in cases])
            score = _reader_scores(mine)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                ci = delong_ci(y, score) if 0 < y.sum() < len(y) else None
            reading["auc"] = _ci(ci) if ci is not None else None
            reading["auc_from"] = "scores" if mine["score"].notna().all() else "calls"
        out["readings"].append(reading)
        model = np.array([model_code[c] for c in cases])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            kappa = cohen_kappa_ci(
                calls_code, model, weights=weights, groups=groups, n_resamples=n_resamples, seed=seed
            )
        out["model_kappa"].append({"reading": label, "kappa": _ci(kappa), "weights": weights or "none"})
    for condition in calls.conditions:
        table = _wide(frame[frame["condition"] == condition], "call")
        if table.shape[1] < 2 or table.empty:
            continue
        codes = np.stack([[code(v) for v in table[c]] for c in table.columns], axis=1)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            kappa = fleiss_kappa_ci(
                codes, groups=[groups_of.get(c, c) for c in table.index], n_resamples=n_resamples, seed=seed
            )
        out["inter_reader"].append(
            {"condition": condition, "readers": len(table.columns), "cases": len(table), "fleiss_kappa": _ci(kappa)}
        )
    conditions = calls.conditions
    if binary and len(conditions) >= 2:
        scores, readers, cases = _crossed(frame, conditions)
        if scores is not None and len(readers) >= 2:
            y = np.array([int(truth_of[c] == positive) for c in cases])
            result = obuchowski_rockette(y, scores, modalities=conditions, readers=readers)
            out["or_test"] = result.to_dict()
    return out


def reader_study_tables(study: dict[str, Any]) -> list[Table]:
    """The study as report tables (AUC per reading, the OR test, kappas)."""
    tables = []
    if study["binary"] and study["readings"]:
        tables.append(
            Table(
                "Reader AUCs",
                ["reading", "cases", "AUC (95% CI)", "from"],
                [[r["reading"], fmt(r["cases"]), fmt(r.get("auc")), r.get("auc_from", "")] for r in study["readings"]],
                note="DeLong intervals. From calls alone a reader's AUC is (sensitivity + specificity) / 2.",
            )
        )
    test = study.get("or_test")
    if test:
        rows = [[c["modality"], fmt(c["estimate"]), f"{fmt(c['low'])} – {fmt(c['high'])}"] for c in test["modality_ci"]]
        tables.append(
            Table(
                "Reader-averaged AUC by condition (Obuchowski–Rockette, random readers and cases)",
                ["condition", "mean AUC", "95% CI"],
                rows,
            )
        )
        diff_rows = [
            [
                d["pair"],
                fmt(d["estimate"]),
                f"{fmt(d['low'])} – {fmt(d['high'])}",
                fmt(d["p"], 4),
                f"{fmt(d['low_fixed_readers'])} – {fmt(d['high_fixed_readers'])}",
                fmt(d["p_fixed_readers"], 4),
            ]
            for d in test["differences"]
        ]
        tables.append(
            Table(
                "Difference in AUC between conditions",
                ["conditions", "difference", "95% CI (random readers)", "p", "95% CI (these readers)", "p"],
                diff_rows,
                note=(
                    f"OR F test: F = {fmt(test['f'])}, df = {test['ndf']}, {fmt(test['ddf'], 2)}, p = "
                    f"{fmt(test['p'], 4)} ({test['n_cases']} cases, {test['n_positive']} positive, "
                    f"{len(test['readers'])} readers who read every case in every condition). Jackknife covariance, "
                    "Hillis denominator df; the fixed-reader columns generalise to these readers only."
                ),
            )
        )
        tables.append(
            Table(
                "Difference in AUC per reader",
                ["reader", "conditions", "difference", "95% CI", "p"],
                [
                    [r["reader"], r["pair"], fmt(r["estimate"]), f"{fmt(r['low'])} – {fmt(r['high'])}", fmt(r["p"], 4)]
                    for r in test["reader_differences"]
                ],
                note="Fixed-reader intervals from the jackknife covariance of the reader's two AUCs.",
            )
        )
    if study["model_kappa"]:
        weights = study["model_kappa"][0]["weights"]
        tables.append(
            Table(
                "Agreement of each reading with the model",
                ["reading", f"Cohen's kappa{' (quadratic)' if weights != 'none' else ''} (95% CI)"],
                [[k["reading"], fmt(k["kappa"])] for k in study["model_kappa"]],
                note="Model decisions at the operating point chosen on validation (binary) or its predicted class. "
                "Bootstrap intervals by patient.",
            )
        )
    if study["inter_reader"]:
        tables.append(
            Table(
                "Agreement between readers",
                ["condition", "readers", "cases", "Fleiss' kappa (95% CI)"],
                [
                    [i["condition"] or "all", fmt(i["readers"]), fmt(i["cases"]), fmt(i["fleiss_kappa"])]
                    for i in study["inter_reader"]
                ],
                note="On the cases every reader of the condition read. Bootstrap intervals by patient.",
            )
        )
    return tables


def write_reader_figures(
    data: RunData, key: str, calls: ReaderCalls, rows: pd.DataFrame, marks: list[dict[str, Any]]
) -> list[Path]:
    """Binary tasks: the model's ROC with each reading's operating point (``<key>_roc_readers``) and, when readers
    gave scores, every reading's ROC curve beside the model's (``<key>_reader_rocs``); PNG, SVG and PDF."""
    from sklearn.metrics import roc_curve

    from osteon.report import figures as figs

    positive = data.task_state.get("positive_class")
    if positive is None or f"prob_{positive}" not in rows:
        return []
    y, score = figs.binary_arrays(rows, str(positive))
    if not 0 < y.sum() < len(y):
        return []
    result = data.metrics.get(key, {})
    point = None
    if "sensitivity" in result and "specificity" in result:
        point = (result["sensitivity"]["estimate"], result["specificity"]["estimate"])
    written = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fig = figs.roc_figure(
            y,
            score,
            title=f"ROC and readers — {key}",
            groups=figs.groups_of(rows),
            auc=result.get("auc"),
            operating_point=point,
            readers=marks,
        )
        written.append(figs.save_figure(fig, data.run.figures / f"{key}_roc_readers.png"))
        frame = calls.frame
        if frame["score"].notna().any():
            truth = dict(zip(rows["case"], (rows["truth"].astype(str) == str(positive)).astype(int), strict=True))
            import matplotlib.pyplot as plt

            fig, ax = plt.subplots(figsize=(4.8, 4.8), dpi=110)
            fpr, tpr, _ = roc_curve(y, score)
            ax.plot(fpr, tpr, lw=2.5, c="black", label="model")
            styles = {c: s for c, s in zip(calls.conditions, ("-", "--", ":", "-."), strict=False)}
            for label in calls.readers:
                mine = frame[frame["label"] == label]
                yy = np.array([truth[c] for c in mine["case"]])
                if 0 < yy.sum() < len(yy):
                    rf, rt, _ = roc_curve(yy, _reader_scores(mine))
                    ax.plot(rf, rt, ls=styles.get(str(mine["condition"].iloc[0]), "-"), lw=1, label=label)
            ax.plot([0, 1], [0, 1], ls="--", c="grey", lw=0.8)
            ax.set(xlabel="1 − specificity", ylabel="sensitivity", title=f"Readers' ROC curves — {key}")
            ax.legend(loc="lower right", fontsize=6)
            written.append(figs.save_figure(fig, data.run.figures / f"{key}_reader_rocs.png"))
    return written


def _ci(ci: Any) -> dict[str, float]:
    return {"estimate": float(ci.estimate), "low": float(ci.low), "high": float(ci.high)}


def _reader_scores(mine: pd.DataFrame) -> np.ndarray:
    """The reader's scores; where a score is missing, the call (0/1) ranks the case."""
    score = mine["score"].to_numpy(dtype=np.float64)
    calls = mine["call"].to_numpy(dtype=np.float64)
    if np.isnan(score).all():
        return calls
    filled = np.where(np.isnan(score), np.nanmin(score) + calls * (np.nanmax(score) - np.nanmin(score)), score)
    return filled


def _model_codes(
    data: RunData, key: str, rows: pd.DataFrame, names: list[str], positive: str | None, binary: bool
) -> dict[str, int]:
    """The model's decision per case: 0/1 at the evaluation's threshold (binary), else the class index."""
    if binary:
        threshold = float(data.metrics.get(key, {}).get("threshold", 0.5))
        scores = rows[f"prob_{positive}"].astype(float).to_numpy()
        return dict(zip(rows["case"], (scores >= threshold).astype(int), strict=True))
    index = {n: i for i, n in enumerate(names)}
    return {c: index.get(str(p), -1) for c, p in zip(rows["case"], rows["prediction"], strict=True)}


def _wide(frame: pd.DataFrame, column: str) -> pd.DataFrame:
    """Cases × readers of ``column``, keeping the cases every reader read."""
    table = frame.pivot_table(index="case", columns="reader", values=column, aggfunc="first")
    return table.dropna()


def _crossed(frame: pd.DataFrame, conditions: list[str]) -> tuple[np.ndarray | None, list[str], list[str]]:
    """``(conditions, readers, cases)`` scores of the readers who read the common cases in every condition."""
    values = frame.assign(value=_reader_score_column(frame))
    table = values.pivot_table(index="case", columns=["condition", "reader"], values="value", aggfunc="first")
    readers = [r for r in dict.fromkeys(frame["reader"]) if all((c, r) in table.columns for c in conditions)]
    if len(readers) < 2:
        return None, readers, []
    table = table[[(c, r) for c in conditions for r in readers]].dropna()
    if table.empty:
        return None, readers, []
    scores = table.to_numpy(dtype=np.float64).T.reshape(len(conditions), len(readers), len(table))
    return scores, readers, list(table.index)


def _reader_score_column(frame: pd.DataFrame) -> np.ndarray:
    out = frame["score"].to_numpy(dtype=np.float64).copy()
    for label in frame["label"].unique():
        mask = (frame["label"] == label).to_numpy()
        out[mask] = _reader_scores(frame[mask])
    return out
