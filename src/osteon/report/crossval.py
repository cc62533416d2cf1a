"""Report parts of ensembles and cross-validation: the members, the spread across folds, the pooled metrics.

An ensemble run (``osteon ensemble`` or ``osteon cv``) keeps its members in ``model.pt``'s ``meta["ensemble"]``
and, when it came from cross-validation, the summary in ``cross_validation.json``; both are read here.
"""

from __future__ import annotations

from typing import Any

from osteon.report.rundata import RunData
from osteon.report.tables import Table, fmt, key_value_table


def ensemble_meta(data: RunData) -> dict[str, Any] | None:
    """``meta["ensemble"]`` of the run's model (members, combination), or ``None`` for a single model."""
    meta = data.model_meta.get("ensemble") or data.training.get("ensemble")
    return meta if isinstance(meta, dict) and meta.get("members") else None


def cross_validation(data: RunData) -> dict[str, Any] | None:
    """The cross-validation summary stored beside an ensemble of folds (``cross_validation.json``)."""
    summary = data.run.read_json(data.run.path / "cross_validation.json")
    return summary or None


def claim_ensemble_answer(data: RunData) -> tuple[str, str]:
    """CLAIM item 27 (ensembling): the answer and where it comes from."""
    meta = ensemble_meta(data)
    if meta is None:
        return "No ensemble: one model.", "model.pt › meta"
    members = meta["members"]
    names = ", ".join(f"{m.get('name')} ({m.get('model')})" for m in members)
    answer = f"Ensemble of {len(members)} models: {names}; outputs combined as the {meta.get('combination')}."
    cv = cross_validation(data)
    if cv:
        answer += (
            f" The members are the {cv.get('folds')} models of a {cv.get('folds')}-fold cross-validation grouped by "
            "patient; each chose its epoch and operating point on its own validation part."
        )
    return answer, "model.pt › meta.ensemble" + (", cross_validation.json" if cv else "")


def crossval_tables(data: RunData) -> list[Table]:
    """Tables of the ensemble's members and, after cross-validation, the per-fold and pooled results."""
    meta = ensemble_meta(data)
    if meta is None:
        return []
    rows = [
        [
            str(m.get("name")),
            str(m.get("model")),
            fmt(m.get("best_epoch")),
            f"{m.get('monitor') or 'score'} {fmt(m.get('best_score'))}",
        ]
        for m in meta["members"]
    ]
    tables = [
        Table(
            f"Ensemble of {len(rows)} models",
            ["member", "model", "best epoch (0-based)", "validation score"],
            rows,
            note=f"Outputs combined as the {meta.get('combination')}.",
        )
    ]
    cv = cross_validation(data)
    if cv:
        tables.extend(_cv_tables(cv))
    return tables


def _cv_tables(cv: dict[str, Any]) -> list[Table]:
    spread = cv.get("spread") or {}
    rows = []
    pooled = cv.get("pooled") or {}
    for name, s in spread.items():
        value = _lookup(pooled, name)
        rows.append(
            [
                name,
                fmt(value) if value is not None else "—",
                f"{fmt(s.get('mean'))} ± {fmt(s.get('sd'))}",
                f"{fmt(s.get('min'))} – {fmt(s.get('max'))}",
            ]
        )
    folds = [
        [str(p["fold"]), fmt(p.get("n_images")), fmt(p.get("n_patients")), fmt(p["metrics"].get(_key(cv)))]
        for p in cv.get("per_fold", [])
    ]
    summary = key_value_table(
        f"{cv.get('folds')}-fold cross-validation",
        [
            (
                "folds",
                f"{cv.get('folds')}, grouped by patient and duplicate content"
                + (f", stratified by {cv['stratified_by']}" if cv.get("stratified_by") else ""),
            ),
            (
                "out-of-fold images (patients)",
                f"{fmt(cv.get('n_images_out_of_fold'))} ({fmt(cv.get('n_patients_out_of_fold'))})",
            ),
            ("held-out test fraction", fmt(cv.get("test_fraction"))),
            ("pooled evaluation", cv.get("pooled_note", "")),
        ],
    )
    out = [
        summary,
        Table(
            "Cross-validation: pooled out-of-fold metrics and their spread across folds",
            ["metric", "pooled (95% CI)", "mean ± SD over folds", "range over folds"],
            rows,
            note="Pooled: all out-of-fold predictions as one test set, intervals by patient. Spread: one value a fold.",
        ),
    ]
    if folds:
        out.append(
            Table("Folds", ["fold", "test images", "test patients", _key(cv)], folds, note="Each fold's own test part.")
        )
    return out


def crossval_figures(data: RunData) -> list[tuple[str, str]]:
    """Binary cross-validation: each fold's out-of-fold ROC and the pooled one, as ``(caption, data URI)``; the
    figure is also written to ``figures/cv_roc_folds`` (PNG, SVG, PDF). Reads ``predictions_oof.csv`` of the CV
    folder (the ensemble run's parent)."""
    cv = cross_validation(data)
    positive = data.task_state.get("positive_class")
    table_path = data.run.path.parent / str((cv or {}).get("pooled_predictions_file", ""))
    if not cv or positive is None or not table_path.is_file():
        return []
    import pandas as pd
    from sklearn.metrics import roc_auc_score, roc_curve

    from osteon.report import figures as figs

    oof = pd.read_csv(table_path, dtype={"truth": str, "error": str}, keep_default_na=True)
    errors = oof["error"].fillna("") if "error" in oof else pd.Series("", index=oof.index)
    oof = oof[(errors == "") & oof["truth"].notna()]
    column = f"prob_{positive}"
    if column not in oof:
        return []
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(4.8, 4.8), dpi=110)
    for fold, part in oof.groupby("fold"):
        y = (part["truth"] == str(positive)).to_numpy(int)
        if 0 < y.sum() < len(y):
            fpr, tpr, _ = roc_curve(y, part[column])
            ax.plot(fpr, tpr, lw=1, alpha=0.8, label=f"fold {fold}, AUC {roc_auc_score(y, part[column]):.3f}")
    y = (oof["truth"] == str(positive)).to_numpy(int)
    if not 0 < y.sum() < len(y):
        plt.close(fig)
        return []
    fpr, tpr, _ = roc_curve(y, oof[column])
    ax.plot(fpr, tpr, lw=2.5, c="black", label=f"pooled, AUC {roc_auc_score(y, oof[column]):.3f}")
    ax.plot([0, 1], [0, 1], ls="--", c="grey", lw=0.8)
    ax.set(xlabel="1 − specificity", ylabel="sensitivity", title="Cross-validation: out-of-fold ROC")
    ax.legend(loc="lower right", fontsize=7)
    path = figs.save_figure(fig, data.run.figures / "cv_roc_folds.png")
    uri = figs.png_data_uri(path.read_bytes())
    return [("Out-of-fold ROC curve of each cross-validation fold and of the pooled predictions", uri)]


def _lookup(result: dict[str, Any], path: str) -> Any:
    value: Any = result
    for part in path.split("."):
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    return value


def _key(cv: dict[str, Any]) -> str:
    """The metric shown per fold: the task's monitor when the folds report it (AUC → ``auc``), else the first."""
    names = list((cv.get("spread") or {}).keys())
    wanted = str(cv.get("monitor") or "").lower().replace("@", "").replace(".", "")
    for name in names:
        if name.lower().replace("_", "").replace(".", "") == wanted:
            return name
    return names[0] if names else "auc"
