"""Multi-reader multi-case (MRMC) ROC analysis and agreement between readers, with confidence intervals.

**Obuchowski–Rockette (OR) analysis with Hillis's denominator degrees of freedom** (Obuchowski & Rockette 1995;
Hillis 2007), the method of RJafroc's ``StSignificanceTesting(method="OR")`` and of the iMRMC/MRMCaov packages:

1. ``θ[i, j]``: the empirical AUC (Wilcoxon–Mann–Whitney, ties count ½) of reader ``j`` in modality ``i``
   (e.g. without and with AI assistance) on the same ``K`` cases.
2. The ``(I·J) × (I·J)`` covariance of the AUCs from the case jackknife:
   ``(K − 1)/K · Σ_k (θ₍ₖ₎ − θ̄)(θ₍ₖ₎ − θ̄)ᵀ``; averaged into ``Var`` (diagonal), ``Cov1`` (same reader, other
   modality), ``Cov2`` (other reader, same modality) and ``Cov3`` (other reader, other modality).
3. Random readers and random cases (RRRC, the conclusion generalises to other readers and cases):
   ``F = MS(T) / (MS(TR) + J·max(Cov2 − Cov3, 0))`` with ``ddf = den²·(I − 1)(J − 1) / MS(TR)²``; the CI of a
   difference of reader-averaged AUCs is ``Δ ± t(ddf)·√(2·den/J)``.
4. Fixed readers, random cases (FRRC, conclusions for these readers only): ``χ² = (I − 1)·MS(T) / (Var − Cov1 +
   (J − 1)·max(Cov2 − Cov3, 0))`` and per-reader differences with ``SE = √(2(Var_j − Cov1_j))``.

The test ``tests/metrics/test_mrmc.py`` reproduces the published analysis of the Van Dyke et al. (1993) data
(5 readers, 114 cases, cine vs spin-echo MRI) in RJafroc's OR chapter: F = 4.456, ddf = 15.26, p = 0.05167,
CI of the difference (−0.08796, 0.00036).

Agreement: Cohen's kappa (unweighted, or quadratic-weighted for grades) between two raters and Fleiss' kappa for
several, each with a percentile bootstrap CI over cases (patients when given).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from scipy import stats

from osteon.metrics._bootstrap import ConfidenceInterval, bootstrap_ci
from osteon.metrics._common import MetricInputError

__all__ = [
    "ORResult",
    "cohen_kappa_ci",
    "empirical_auc",
    "fleiss_kappa",
    "fleiss_kappa_ci",
    "jackknife_aucs",
    "obuchowski_rockette",
]


def empirical_auc(y_true: Any, score: Any) -> float:
    """Wilcoxon–Mann–Whitney AUC (ties between a positive and a negative count ½); ``nan`` with one class."""
    y = np.asarray(y_true).astype(bool)
    s = np.asarray(score, dtype=np.float64)
    pos, neg = np.sort(s[y]), np.sort(s[~y])
    if len(pos) == 0 or len(neg) == 0:
        return float("nan")
    below = np.searchsorted(neg, pos, side="left")
    ties = np.searchsorted(neg, pos, side="right") - below
    return float((below + 0.5 * ties).sum() / (len(pos) * len(neg)))


def jackknife_aucs(y_true: Any, score: Any) -> np.ndarray:
    """``(K,)`` AUCs with case ``k`` left out, in O(K log K) (each case's share of the Mann–Whitney sum)."""
    y = np.asarray(y_true).astype(bool)
    s = np.asarray(score, dtype=np.float64)
    pos, neg = s[y], s[~y]
    n1, n0 = len(pos), len(neg)
    if n1 < 2 or n0 < 2:
        raise MetricInputError(f"the jackknife needs at least 2 positive and 2 negative cases; got {n1} and {n0}.")
    sneg, spos = np.sort(neg), np.sort(pos)
    row = np.searchsorted(sneg, pos, side="left") + 0.5 * (
        np.searchsorted(sneg, pos, side="right") - np.searchsorted(sneg, pos, side="left")
    )  # per positive: Σ_j ψ(x_i, y_j)
    col = (n1 - np.searchsorted(spos, neg, side="right")) + 0.5 * (
        np.searchsorted(spos, neg, side="right") - np.searchsorted(spos, neg, side="left")
    )  # per negative: Σ_i ψ(x_i, y_j)
    total = row.sum()
    out = np.empty(len(s))
    out[y] = (total - row) / ((n1 - 1) * n0)
    out[~y] = (total - col) / (n1 * (n0 - 1))
    return out


@dataclass
class ORResult:
    """Obuchowski–Rockette analysis of ``I`` modalities × ``J`` readers on the same cases.

    Attributes:
        modalities, readers: Names in the order of the arrays.
        auc: ``(I, J)`` empirical AUCs.
        modality_auc: ``(I,)`` reader-averaged AUCs.
        var, cov1, cov2, cov3: Jackknife variance components (see the module docstring).
        ms_t, ms_r, ms_tr: Mean squares of modality, reader and their interaction.
        f, ndf, ddf, p: RRRC F test of "all modalities have the same reader-averaged AUC".
        differences: One dict per pair of modalities: ``pair``, ``estimate`` (first − second), RRRC ``se``, ``low``,
            ``high``, ``p``; FRRC ``se_fixed_readers``, ``low_fixed_readers``, ``high_fixed_readers``,
            ``p_fixed_readers``.
        modality_ci: Per modality: RRRC ``estimate``, ``se``, ``df``, ``low``, ``high``.
        reader_differences: Per reader and pair (FRRC): ``reader``, ``pair``, ``estimate``, ``se``, ``low``,
            ``high``, ``p``.
        chi2_fixed_readers, p_fixed_readers: FRRC chi-square test.
        n_cases, n_positive: Case counts.
    """

    modalities: list[str]
    readers: list[str]
    auc: np.ndarray
    modality_auc: np.ndarray
    var: float
    cov1: float
    cov2: float
    cov3: float
    ms_t: float
    ms_r: float
    ms_tr: float
    f: float
    ndf: int
    ddf: float
    p: float
    chi2_fixed_readers: float
    p_fixed_readers: float
    n_cases: int
    n_positive: int
    differences: list[dict[str, Any]] = field(default_factory=list)
    modality_ci: list[dict[str, Any]] = field(default_factory=list)
    reader_differences: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (arrays as lists)."""
        out = asdict(self)
        out["auc"] = {
            m: dict(zip(self.readers, map(float, row), strict=True))
            for m, row in zip(self.modalities, self.auc, strict=True)
        }
        out["modality_auc"] = dict(zip(self.modalities, map(float, self.modality_auc), strict=True))
        out["method"] = "Obuchowski-Rockette, jackknife covariance, Hillis ddf (random readers and cases)"
        return out


def obuchowski_rockette(
    y_true: Any,
    scores: Any,
    *,
    modalities: Sequence[str] | None = None,
    readers: Sequence[str] | None = None,
    confidence: float = 0.95,
) -> ORResult:
    """OR analysis of ratings ``scores[i, j, k]`` (modality ``i``, reader ``j``, case ``k``) against ``y_true[k]``.

    Args:
        y_true: ``(K,)`` 0/1 truth of the cases.
        scores: ``(I, J, K)`` ratings or probabilities (higher = more likely positive); binary calls work too
            (their AUC is (sensitivity + specificity) / 2). Every reader reads every case in every modality.
        modalities: ``I`` names (default ``m0, m1 ...``).
        readers: ``J`` names (default ``r0, r1 ...``).
        confidence: Level of the intervals.

    Raises:
        MetricInputError: shapes disagree, fewer than 2 modalities or 2 readers, missing ratings, or too few
            positive/negative cases.
    """
    y = np.asarray(y_true).astype(int)
    x = np.asarray(scores, dtype=np.float64)
    if x.ndim != 3 or x.shape[2] != len(y):
        raise MetricInputError(f"scores must be (modalities, readers, cases) with {len(y)} cases; got {x.shape}.")
    n_mod, n_read, n_case = x.shape
    if n_mod < 2 or n_read < 2:
        raise MetricInputError(
            f"OR analysis compares ≥ 2 modalities read by ≥ 2 readers; got {n_mod} modalities and {n_read} readers."
        )
    if not np.isfinite(x).all():
        raise MetricInputError("every reader must rate every case in every modality (missing ratings found).")
    modalities = list(modalities or [f"m{i}" for i in range(n_mod)])
    readers = list(readers or [f"r{j}" for j in range(n_read)])
    auc = np.array([[empirical_auc(y, x[i, j]) for j in range(n_read)] for i in range(n_mod)])
    jack = np.array([[jackknife_aucs(y, x[i, j]) for j in range(n_read)] for i in range(n_mod)])  # (I, J, K)
    flat = jack.reshape(n_mod * n_read, n_case)
    centred = flat - flat.mean(axis=1, keepdims=True)
    cov = (n_case - 1) / n_case * centred @ centred.T
    var, cov1, cov2, cov3, per_reader, per_mod_cov2 = _components(cov, n_mod, n_read)

    mod_mean, read_mean, grand = auc.mean(axis=1), auc.mean(axis=0), auc.mean()
    ms_t = n_read * ((mod_mean - grand) ** 2).sum() / (n_mod - 1)
    ms_r = n_mod * ((read_mean - grand) ** 2).sum() / (n_read - 1)
    ms_tr = ((auc - mod_mean[:, None] - read_mean[None, :] + grand) ** 2).sum() / ((n_mod - 1) * (n_read - 1))
    den = ms_tr + n_read * max(cov2 - cov3, 0.0)
    f_stat = ms_t / den if den > 0 else float("nan")
    ddf = den**2 * (n_mod - 1) * (n_read - 1) / ms_tr**2 if ms_tr > 0 else float("inf")
    p = float(stats.f.sf(f_stat, n_mod - 1, ddf)) if np.isfinite(f_stat) else float("nan")
    den_fixed = var - cov1 + (n_read - 1) * max(cov2 - cov3, 0.0)
    chi2 = (n_mod - 1) * ms_t / den_fixed if den_fixed > 0 else float("nan")
    p_fixed = float(stats.chi2.sf(chi2, n_mod - 1)) if np.isfinite(chi2) else float("nan")

    alpha = 1 - confidence
    t_crit = stats.t.ppf(1 - alpha / 2, ddf) if np.isfinite(ddf) else stats.norm.ppf(1 - alpha / 2)
    z_crit = stats.norm.ppf(1 - alpha / 2)
    differences = []
    for a in range(n_mod):
        for b in range(a + 1, n_mod):
            diff = float(mod_mean[a] - mod_mean[b])
            se = float(np.sqrt(2 * den / n_read))
            se_fixed = float(np.sqrt(2 * den_fixed / n_read)) if den_fixed > 0 else float("nan")
            differences.append(
                {
                    "pair": f"{modalities[a]} - {modalities[b]}",
                    "estimate": diff,
                    "se": se,
                    "low": diff - t_crit * se,
                    "high": diff + t_crit * se,
                    "p": float(2 * stats.t.sf(abs(diff) / se, ddf)) if se > 0 else float("nan"),
                    "se_fixed_readers": se_fixed,
                    "low_fixed_readers": diff - z_crit * se_fixed,
                    "high_fixed_readers": diff + z_crit * se_fixed,
                    "p_fixed_readers": float(2 * stats.norm.sf(abs(diff) / se_fixed)) if se_fixed > 0 else float("nan"),
                }
            )
    modality_ci = []
    for i in range(n_mod):
        ms_r_i = float(((auc[i] - mod_mean[i]) ** 2).sum() / (n_read - 1))
        den_i = ms_r_i + n_read * max(per_mod_cov2[i], 0.0)
        df_i = den_i**2 / ms_r_i**2 * (n_read - 1) if ms_r_i > 0 else float("inf")
        se_i = float(np.sqrt(den_i / n_read))
        crit = stats.t.ppf(1 - alpha / 2, df_i) if np.isfinite(df_i) else z_crit
        modality_ci.append(
            {
                "modality": modalities[i],
                "estimate": float(mod_mean[i]),
                "se": se_i,
                "df": float(df_i),
                "low": float(mod_mean[i] - crit * se_i),
                "high": float(mod_mean[i] + crit * se_i),
            }
        )
    reader_differences = []
    for j in range(n_read):
        var_j, cov1_j = per_reader[j]
        se = float(np.sqrt(max(2 * (var_j - cov1_j), 0.0)))
        for a in range(n_mod):
            for b in range(a + 1, n_mod):
                diff = float(auc[a, j] - auc[b, j])
                reader_differences.append(
                    {
                        "reader": readers[j],
                        "pair": f"{modalities[a]} - {modalities[b]}",
                        "estimate": diff,
                        "se": se,
                        "low": diff - z_crit * se,
                        "high": diff + z_crit * se,
                        "p": float(2 * stats.norm.sf(abs(diff) / se)) if se > 0 else float("nan"),
                    }
                )
    return ORResult(
        modalities=modalities,
        readers=readers,
        auc=auc,
        modality_auc=mod_mean,
        var=var,
        cov1=cov1,
        cov2=cov2,
        cov3=cov3,
        ms_t=float(ms_t),
        ms_r=float(ms_r),
        ms_tr=float(ms_tr),
        f=float(f_stat),
        ndf=n_mod - 1,
        ddf=float(ddf),
        p=p,
        chi2_fixed_readers=float(chi2),
        p_fixed_readers=p_fixed,
        n_cases=n_case,
        n_positive=int(y.sum()),
        differences=differences,
        modality_ci=modality_ci,
        reader_differences=reader_differences,
    )


def _components(
    cov: np.ndarray, n_mod: int, n_read: int
) -> tuple[float, float, float, float, list[tuple[float, float]], list[float]]:
    """Var, Cov1, Cov2, Cov3 averaged over the matching pairs; per reader (Var_j, Cov1_j); per modality Cov2_i."""
    index = [(i, j) for i in range(n_mod) for j in range(n_read)]
    groups: dict[str, list[float]] = {"var": [], "cov1": [], "cov2": [], "cov3": []}
    reader_var: dict[int, list[float]] = {j: [] for j in range(n_read)}
    reader_cov1: dict[int, list[float]] = {j: [] for j in range(n_read)}
    mod_cov2: dict[int, list[float]] = {i: [] for i in range(n_mod)}
    for a, (i, j) in enumerate(index):
        for b, (ii, jj) in enumerate(index):
            value = float(cov[a, b])
            if a == b:
                groups["var"].append(value)
                reader_var[j].append(value)
            elif j == jj:
                groups["cov1"].append(value)
                reader_cov1[j].append(value)
            elif i == ii:
                groups["cov2"].append(value)
                mod_cov2[i].append(value)
            else:
                groups["cov3"].append(value)
    per_reader = [(float(np.mean(reader_var[j])), float(np.mean(reader_cov1[j]))) for j in range(n_read)]
    per_mod = [float(np.mean(mod_cov2[i])) for i in range(n_mod)]
    return (
        float(np.mean(groups["var"])),
        float(np.mean(groups["cov1"])),
        float(np.mean(groups["cov2"])),
        float(np.mean(groups["cov3"])),
        per_reader,
        per_mod,
    )


# -- agreement ---------------------------------------------------------------------------------------------
def _cohen(a: np.ndarray, b: np.ndarray, weights: str | None) -> float:
    from sklearn.metrics import cohen_kappa_score

    if len(np.unique(np.concatenate([a, b]))) < 2:
        return float("nan")  # both raters used one category: kappa is undefined
    return float(cohen_kappa_score(a, b, weights=weights))


def cohen_kappa_ci(
    a: Any,
    b: Any,
    *,
    weights: str | None = None,
    groups: Any = None,
    n_resamples: int = 1000,
    seed: int = 0,
    confidence: float = 0.95,
) -> ConfidenceInterval:
    """Cohen's kappa between two raters' calls on the same cases with a bootstrap CI over cases (or patients).

    Args:
        a, b: ``(N,)`` category codes (integers) of the two raters.
        weights: ``None`` (nominal), ``"linear"`` or ``"quadratic"`` (grades).
        groups: Optional ``(N,)`` patient ids: resample patients, not cases.
    """
    a, b = np.asarray(a).astype(int), np.asarray(b).astype(int)
    return bootstrap_ci(
        lambda x, y: _cohen(x, y, weights),
        a,
        b,
        groups=groups,
        n_resamples=n_resamples,
        confidence=confidence,
        seed=seed,
        vectorize=False,
    )


def fleiss_kappa(ratings: Any, *, n_categories: int | None = None) -> float:
    """Fleiss' kappa of ``(N, R)`` category codes (``R`` ≥ 2 raters, every rater rates every case)."""
    r = np.asarray(ratings).astype(int)
    if r.ndim != 2 or r.shape[1] < 2:
        raise MetricInputError(f"Fleiss' kappa needs (cases, raters) with ≥ 2 raters; got shape {r.shape}.")
    k = int(n_categories or r.max() + 1)
    counts = np.stack([(r == c).sum(axis=1) for c in range(k)], axis=1).astype(np.float64)  # (N, k)
    n_raters = r.shape[1]
    p_cat = counts.sum(axis=0) / counts.sum()
    p_case = ((counts**2).sum(axis=1) - n_raters) / (n_raters * (n_raters - 1))
    p_bar, p_e = p_case.mean(), (p_cat**2).sum()
    return float((p_bar - p_e) / (1 - p_e)) if p_e < 1 else float("nan")


def fleiss_kappa_ci(
    ratings: Any, *, groups: Any = None, n_resamples: int = 1000, seed: int = 0, confidence: float = 0.95
) -> ConfidenceInterval:
    """Fleiss' kappa with a bootstrap CI over cases (or patients)."""
    r = np.asarray(ratings).astype(int)
    k = int(r.max() + 1)
    return bootstrap_ci(
        lambda x: fleiss_kappa(x, n_categories=k),
        r,
        groups=groups,
        n_resamples=n_resamples,
        confidence=confidence,
        seed=seed,
        vectorize=False,
    )
