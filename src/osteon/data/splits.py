"""Leakage-free train/val/test splits and k-fold assignments, saved to and read from CSV.

Leakage happens when one patient, or one picture under two names, lands on both sides of a split.
So every split here is made over **groups**, not rows: :func:`group_ids` joins rows that share a
``patient_id`` *or* a byte-identical file (SHA-256), transitively (union-find). A row without a
patient id is a group of its own unless a duplicate links it to others.

Algorithm of :func:`make_splits` (scikit-learn's :class:`~sklearn.model_selection.StratifiedGroupKFold`):

1. Pick a number of folds ``K`` (2..20, at most the number of groups) such that ``test`` and ``val``
   are whole numbers of folds with the smallest rounding error (0.15/0.15 → K=20: 3 + 3 folds of 5%;
   0.2/0.2 → K=5: 1 + 1 fold).
2. Run ``StratifiedGroupKFold(K, shuffle=True, random_state=seed)``: groups are shuffled, sorted by
   how unevenly their rows spread over the classes, and given greedily to the fold that keeps the
   per-class proportions most even. Groups never straddle folds.
3. The first ``round(test·K)`` folds become ``test``, the next ``round(val·K)`` ``val``, the rest
   ``train``.
4. Repair: a class with at least one group per split that is still absent from some split gets the
   smallest of its groups moved there from the split that holds most of it. Classes with fewer
   groups than splits raise :class:`SplitWarning` (they cannot be everywhere).

:func:`kfold_splits` is step 2 alone. Both are deterministic for a seed.
"""

from __future__ import annotations

import warnings
from pathlib import Path, PurePosixPath

import numpy as np
import pandas as pd
from sklearn.model_selection import StratifiedGroupKFold

from osteon.data.hashing import content_hashes, links_from_keys, union_find
from osteon.data.manifest import SPLITS, Manifest
from osteon.errors import ConfigError, ManifestError

MAX_FOLDS = 20
_NUMERIC_BINS = 5


class SplitWarning(UserWarning):
    """A class is too small to appear in every split (or fold)."""


def group_ids(manifest: Manifest, *, hashes: pd.Series | None = None, progress: bool = False) -> pd.Series:
    """Leakage groups: rows sharing a patient id or a byte-identical file are one group (transitively).

    Args:
        manifest: The dataset.
        hashes: Precomputed :func:`~osteon.data.hashing.content_hashes` (else the files are hashed now;
            missing files are linked by patient id only).
        progress: Draw a progress bar on stderr while hashing.

    Returns:
        ``int64`` Series aligned with ``manifest.frame``, named ``"group"``; ids 0..G-1 in order of
        first appearance.

    Example:
        >>> groups = group_ids(manifest)  # doctest: +SKIP
        >>> groups.nunique() <= len(manifest)  # doctest: +SKIP
        True
    """
    if hashes is None:
        hashes = content_hashes(manifest, progress=progress)
    if len(hashes) != len(manifest):
        raise ConfigError(f"hashes has {len(hashes)} values but the manifest {len(manifest)} rows; pass one per row.")
    links = [links_from_keys(hashes.reset_index(drop=True))]
    if "patient_id" in manifest.frame:
        links.append(links_from_keys(manifest.frame["patient_id"].reset_index(drop=True)))
    return pd.Series(union_find(len(manifest), links), index=manifest.frame.index, name="group")


def make_splits(
    manifest: Manifest,
    *,
    val: float = 0.15,
    test: float = 0.15,
    stratify: str | None = "label",
    seed: int = 0,
    groups: pd.Series | None = None,
) -> pd.Series:
    """Assign every row to ``train``, ``val`` or ``test``, keeping leakage groups whole and classes balanced.

    Args:
        manifest: The dataset.
        val: Fraction of rows for validation (0 ≤ val < 1).
        test: Fraction of rows for testing (0 ≤ test < 1, val + test < 1).
        stratify: Column whose class ratios each split should keep (``None``: sizes only). A numeric
            column with more than 10 distinct values is stratified by quintile.
        seed: Random seed; the same seed gives the same splits.
        groups: One group id per row (e.g. hospital or site) replacing :func:`group_ids`; missing
            values are groups of their own.

    Returns:
        ``string`` Series of ``"train"``/``"val"``/``"test"`` aligned with ``manifest.frame``, named ``"split"``.

    Raises:
        ConfigError: bad fractions, an unknown ``stratify`` column, or fewer groups than splits.

    Warns:
        SplitWarning: a class has fewer groups than there are splits.

    Example:
        >>> splits = make_splits(manifest, val=0.15, test=0.15, seed=0)  # doctest: +SKIP
        >>> manifest = manifest.with_columns(split=splits)  # doctest: +SKIP
    """
    _check_fraction("val", val)
    _check_fraction("test", test)
    if val + test >= 1:
        raise ConfigError(f"val + test = {val + test:g} leaves nothing to train on; choose val + test < 1.")
    group = _resolve_groups(manifest, groups)
    strata, names = _strata(manifest, stratify)
    split = np.full(len(manifest), "train", dtype=object)
    if len(manifest) and (val > 0 or test > 0):
        n_groups = len(np.unique(group))
        largest_class = int(np.bincount(strata).max())  # StratifiedGroupKFold needs K ≤ the largest class
        k, n_test, n_val = _fold_plan(val, test, min(n_groups, largest_class))
        folds = _group_kfold(strata, group, k=k, seed=seed)
        split[folds < n_test] = "test"
        split[(folds >= n_test) & (folds < n_test + n_val)] = "val"
        wanted = [name for name, fraction in (("train", 1.0), ("val", val), ("test", test)) if fraction > 0]
        _repair(split, strata, group, wanted, names=names, stratify=stratify)
    return pd.Series(split, index=manifest.frame.index, dtype="string", name="split")


def kfold_splits(
    manifest: Manifest,
    *,
    k: int = 5,
    stratify: str | None = "label",
    seed: int = 0,
    groups: pd.Series | None = None,
) -> pd.Series:
    """Assign every row to one of ``k`` cross-validation folds (groups whole, classes balanced).

    Args:
        manifest: The dataset (usually the train+val part; keep the test set out).
        k: Number of folds, 2 ≤ k ≤ number of groups.
        stratify: Column to balance across folds (``None``: sizes only).
        seed: Random seed.
        groups: One group id per row replacing :func:`group_ids`.

    Returns:
        ``int64`` Series of fold indices 0..k-1 aligned with ``manifest.frame``, named ``"fold"``.

    Raises:
        ConfigError: ``k`` < 2 or larger than the number of groups; unknown ``stratify`` column.
    """
    if not isinstance(k, int) or k < 2:
        raise ConfigError(f"k must be an integer ≥ 2 for cross-validation, got {k!r}.")
    group = _resolve_groups(manifest, groups)
    n_groups = len(np.unique(group))
    if k > n_groups:
        raise ConfigError(
            f"{manifest.name}: k={k} folds but only {n_groups} patient/duplicate groups. Fix: use k ≤ {n_groups}."
        )
    strata, names = _strata(manifest, stratify)
    if k > np.bincount(strata).max():
        raise ConfigError(
            f"{manifest.name}: k={k} folds but the largest {stratify} class has only {np.bincount(strata).max()} "
            "rows. Fix: use a smaller k or stratify by another column (or none)."
        )
    folds = _group_kfold(strata, group, k=k, seed=seed)
    for code in np.unique(strata):
        present = len(np.unique(group[strata == code]))
        if present < k and stratify is not None:
            warnings.warn(
                f"{manifest.name}: {stratify}={names[code]!r} has only {present} "
                f"group(s), fewer than k={k}; some folds will have none of it.",
                SplitWarning,
                stacklevel=2,
            )
    return pd.Series(folds, index=manifest.frame.index, dtype="int64", name="fold")


def save_split_file(
    manifest: Manifest,
    splits: pd.Series,
    path: str | Path,
    *,
    folds: pd.Series | None = None,
    overwrite: bool = False,
) -> Path:
    """Write a splits CSV with columns ``image``, ``split`` (and ``fold``), one row per manifest row.

    ``image`` is written exactly as in the manifest, so :func:`apply_split_file` matches it back.

    Raises:
        FileExistsError: ``path`` exists and ``overwrite`` is False.
        ManifestError: ``splits``/``folds`` do not have one value per row.
    """
    path = Path(path)
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path} exists; pass overwrite=True (CLI: --overwrite) or choose another path.")
    for what, values in (("splits", splits), ("folds", folds)):
        if values is not None and len(values) != len(manifest):
            raise ManifestError(f"{what} has {len(values)} values but {manifest.name} has {len(manifest)} rows.")
    table = pd.DataFrame({"image": manifest.frame["image"].to_numpy(), "split": np.asarray(splits, dtype=object)})
    if folds is not None:
        table["fold"] = pd.array(np.asarray(folds), dtype="Int64")
    path.parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(path, index=False)
    return path


def apply_split_file(manifest: Manifest, path: str | Path) -> Manifest:
    """A copy of ``manifest`` whose ``split`` (and ``fold``) columns come from a splits CSV.

    The CSV has columns ``image`` and ``split`` (``train``/``val``/``test``, or empty) and optionally
    ``fold``; images match the manifest's ``image`` entries (``/`` or ``\\`` separators, ``./`` ignored).

    Raises:
        ManifestError: the file is missing or malformed, lists an image twice or one the manifest does
            not have, misses images of the manifest, or holds an unknown split name.
    """
    path = Path(path)
    if not path.is_file():
        raise ManifestError(f"{path}: no such splits file. Fix: create it with `osteon data split PATH --out {path}`.")
    table = pd.read_csv(path, dtype={"image": "string", "split": "string"})
    missing_columns = [c for c in ("image", "split") if c not in table]
    if missing_columns:
        raise ManifestError(
            f"{path}: no {missing_columns} column(s) (columns: {list(table.columns)}). "
            "Fix: a splits file has columns image,split[,fold]."
        )
    keys = table["image"].map(_path_key)
    repeated = sorted(set(keys[keys.duplicated()]))
    if repeated:
        raise ManifestError(f"{path}: images listed more than once: {_some(repeated)}. Fix: keep one row per image.")
    bad = table["split"].notna() & ~table["split"].isin(SPLITS)
    if bad.any():
        raise ManifestError(f"{path}: split values {sorted(set(table.loc[bad, 'split']))} are not train/val/test.")
    ours = manifest.frame["image"].map(_path_key)
    unknown = sorted(set(keys) - set(ours))
    if unknown:
        raise ManifestError(
            f"{path}: {len(unknown)} image(s) are not in {manifest.name}: {_some(unknown)}. "
            "Fix: use the splits file made for this dataset (paths as in its manifest)."
        )
    absent = sorted(set(ours) - set(keys))
    if absent:
        raise ManifestError(
            f"{path}: {len(absent)} image(s) of {manifest.name} have no split: {_some(absent)}. "
            "Fix: re-run `osteon data split` on this dataset."
        )
    lookup = table.assign(key=keys).set_index("key")
    columns: dict[str, object] = {"split": pd.array(ours.map(lookup["split"]).to_numpy(), dtype="string")}
    if "fold" in table:
        columns["fold"] = pd.array(pd.to_numeric(ours.map(lookup["fold"])).to_numpy(), dtype="Int64")
    return manifest.with_columns(**columns)


# -- internals ------------------------------------------------------------------------------------------
def _check_fraction(name: str, value: float) -> None:
    if not isinstance(value, int | float) or not 0 <= value < 1:
        raise ConfigError(f"{name} must be a fraction in [0, 1), got {value!r}.")


def _resolve_groups(manifest: Manifest, groups: pd.Series | None) -> np.ndarray:
    if groups is None:
        return group_ids(manifest).to_numpy()
    if len(groups) != len(manifest):
        raise ConfigError(f"groups has {len(groups)} values but {manifest.name} has {len(manifest)} rows.")
    codes = pd.factorize(pd.Series(np.asarray(groups, dtype=object)), use_na_sentinel=True)[0]
    lonely = codes < 0
    codes[lonely] = codes.max(initial=-1) + 1 + np.arange(int(lonely.sum()))
    return codes.astype(np.int64)


def _strata(manifest: Manifest, stratify: str | None) -> tuple[np.ndarray, list[str]]:
    """Integer class code per row (missing values are a class of their own) and the class names."""
    if stratify is None:
        return np.zeros(len(manifest), dtype=np.int64), ["all"]
    if stratify not in manifest.frame:
        raise ConfigError(
            f"{manifest.name}: cannot stratify by {stratify!r}: no such column (columns: {manifest.columns}). "
            "Fix: pass --stratify with an existing column, or --stratify none."
        )
    column = manifest.frame[stratify]
    if pd.api.types.is_numeric_dtype(column) and column.nunique() > 10:
        column = pd.qcut(column, q=_NUMERIC_BINS, duplicates="drop")
    labels = column.astype("string").fillna("<missing>")
    codes, uniques = pd.factorize(labels, sort=True)
    return codes.astype(np.int64), [str(u) for u in uniques]


def _fold_plan(val: float, test: float, n_groups: int) -> tuple[int, int, int]:
    """(K, test folds, val folds) that best turn the fractions into whole folds, with K ≤ ``n_groups``."""
    best: tuple[float, int, int, int] | None = None
    for k in range(2, min(MAX_FOLDS, n_groups) + 1):
        n_test, n_val = round(test * k), round(val * k)
        if (test > 0 and n_test < 1) or (val > 0 and n_val < 1) or n_test + n_val > k - 1:
            continue
        error = abs(n_test / k - test) + abs(n_val / k - val)
        if best is None or error < best[0] - 1e-12:
            best = (error, k, n_test, n_val)
    if best is None:
        needed = 1 + (val > 0) + (test > 0)
        raise ConfigError(
            f"only {n_groups} patient/duplicate group(s): too few for train/val/test with val={val:g}, test={test:g}"
            f" (needs ≥ {needed} groups, more for small fractions). Fix: add data or lower val/test."
        )
    return best[1], best[2], best[3]


def _group_kfold(strata: np.ndarray, group: np.ndarray, *, k: int, seed: int) -> np.ndarray:
    """Fold index per row from StratifiedGroupKFold (groups whole, classes balanced)."""
    folds = np.full(len(strata), -1, dtype=np.int64)
    splitter = StratifiedGroupKFold(n_splits=k, shuffle=True, random_state=seed)
    with warnings.catch_warnings():  # "least populated class has only N members": we warn ourselves
        warnings.simplefilter("ignore", UserWarning)
        for fold, (_, held_out) in enumerate(splitter.split(np.zeros(len(strata)), strata, group)):
            folds[held_out] = fold
    return folds


def _repair(
    split: np.ndarray,
    strata: np.ndarray,
    group: np.ndarray,
    wanted: list[str],
    *,
    names: list[str],
    stratify: str | None,
) -> None:
    """Move whole groups so that each class with enough groups appears in every wanted split (in place)."""
    for code in np.unique(strata):
        of_class = strata == code
        class_groups = np.unique(group[of_class])
        if len(class_groups) < len(wanted):
            if stratify is not None:
                warnings.warn(
                    f"{stratify}={names[code]!r} ({int(of_class.sum())} rows) has only {len(class_groups)} group(s); "
                    f"it cannot appear in all of {wanted}.",
                    SplitWarning,
                    stacklevel=3,
                )
            continue
        for target in wanted:
            if np.any(of_class & (split == target)):
                continue
            holders = {s: np.unique(group[of_class & (split == s)]) for s in wanted if s != target}
            donor = max(holders, key=lambda s: (len(holders[s]), s))
            if len(holders[donor]) < 2:
                continue
            sizes = [(int(np.sum(group == g)), int(g)) for g in holders[donor]]
            _, smallest = min(sizes)
            split[group == smallest] = target


def _path_key(value: object) -> str:
    return PurePosixPath(str(value).replace("\\", "/")).as_posix()


def _some(items: list[str], n: int = 5) -> str:
    shown = ", ".join(items[:n])
    return shown + (f" ... (+{len(items) - n} more)" if len(items) > n else "")
