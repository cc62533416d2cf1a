"""Leakage-free splits: groups stay whole, classes stay balanced, seeds are reproducible."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from osteon.data.manifest import Manifest, MissingPatientIdWarning
from osteon.data.splits import (
    SplitWarning,
    apply_split_file,
    group_ids,
    kfold_splits,
    make_splits,
    save_split_file,
)
from osteon.errors import ConfigError, ManifestError


def _manifest(n_patients: int = 200, *, per_patient: int = 2, positive: float = 0.3, seed: int = 0) -> Manifest:
    """Rows without files: each patient has ``per_patient`` images sharing one label (the usual case)."""
    rng = np.random.default_rng(seed)
    labels = np.where(rng.random(n_patients) < positive, "pos", "neg")
    rows = [
        {"image": f"img/{p:04d}_{k}.png", "patient_id": f"P{p:04d}", "label": labels[p]}
        for p in range(n_patients)
        for k in range(per_patient)
    ]
    return Manifest(pd.DataFrame(rows), root="/nonexistent", name="synthetic")


def _assert_groups_whole(groups: pd.Series, assignment: pd.Series) -> None:
    per_group = pd.DataFrame({"g": groups.to_numpy(), "s": assignment.to_numpy()}).groupby("g")["s"].nunique()
    assert (per_group == 1).all(), f"groups split across {per_group[per_group > 1].index.tolist()}"


def test_make_splits_keeps_patients_whole_and_hits_the_fractions() -> None:
    manifest = _manifest(400)
    splits = make_splits(manifest, val=0.15, test=0.15, seed=0)
    assert set(splits) == {"train", "val", "test"}
    _assert_groups_whole(manifest.frame["patient_id"], splits)
    fractions = splits.value_counts(normalize=True)
    assert fractions["test"] == pytest.approx(0.15, abs=0.03)
    assert fractions["val"] == pytest.approx(0.15, abs=0.03)


def test_make_splits_keeps_class_ratios() -> None:
    manifest = _manifest(400, positive=0.25)
    splits = make_splits(manifest, seed=3)
    overall = (manifest.frame["label"] == "pos").mean()
    for name in ("train", "val", "test"):
        ratio = (manifest.frame["label"][splits == name] == "pos").mean()
        assert ratio == pytest.approx(overall, abs=0.05), name


def test_make_splits_is_deterministic_per_seed() -> None:
    manifest = _manifest(300)
    first = make_splits(manifest, seed=11)
    assert first.equals(make_splits(manifest, seed=11))
    assert not first.equals(make_splits(manifest, seed=12))


def test_other_fractions_and_no_val() -> None:
    manifest = _manifest(300)
    splits = make_splits(manifest, val=0.0, test=0.2, seed=0)
    assert set(splits) == {"train", "test"}
    assert (splits == "test").mean() == pytest.approx(0.2, abs=0.03)
    splits = make_splits(manifest, val=0.1, test=0.1, seed=0)
    assert (splits == "val").mean() == pytest.approx(0.1, abs=0.03)


def test_small_class_is_in_every_split_when_feasible() -> None:
    manifest = _manifest(120, positive=0.0)
    frame = manifest.frame.copy()
    rare = frame["patient_id"].isin(["P0005", "P0050", "P0100"])  # 3 patients: one per split is feasible
    frame.loc[rare, "label"] = "rare"
    manifest = Manifest(frame, root="/nonexistent")
    for seed in range(5):
        splits = make_splits(manifest, seed=seed)
        assert set(splits[rare]) == {"train", "val", "test"}, seed
        _assert_groups_whole(frame["patient_id"], splits)


def test_too_small_class_warns() -> None:
    manifest = _manifest(60, positive=0.0)
    frame = manifest.frame.copy()
    frame.loc[frame["patient_id"] == "P0001", "label"] = "rare"
    with pytest.warns(SplitWarning, match="rare"):
        make_splits(Manifest(frame, root="/nonexistent"), seed=0)


def test_duplicate_files_are_kept_together(tmp_path: Path) -> None:
    rows = []
    for i in range(60):
        (tmp_path / f"{i}.png").write_bytes(f"image {i}".encode())
        rows.append({"image": f"{i}.png", "label": "a" if i % 2 else "b"})
    for i in range(0, 60, 6):  # ten byte-identical copies under other names, no patient ids
        (tmp_path / f"copy{i}.png").write_bytes(f"image {i}".encode())
        rows.append({"image": f"copy{i}.png", "label": "b"})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MissingPatientIdWarning)
        manifest = Manifest(pd.DataFrame(rows), root=tmp_path)
    groups = group_ids(manifest)
    assert groups.nunique() == 60
    for seed in range(3):
        splits = make_splits(manifest, seed=seed)
        for i in range(0, 60, 6):
            assert splits.iloc[i] == splits.iloc[60 + i // 6]


def test_group_ids_union_patients_and_hashes_transitively() -> None:
    frame = pd.DataFrame(
        {"image": list("abcdef"), "patient_id": pd.array(["p1", "p2", "p2", None, None, "p3"], dtype="string")}
    )
    manifest = Manifest(frame, root="/nonexistent")
    hashes = pd.Series(["h1", "h1", "h2", "h3", "h3", "h4"], dtype="string")
    groups = group_ids(manifest, hashes=hashes)
    assert groups.iloc[0] == groups.iloc[1] == groups.iloc[2]  # p1~p2 by hash h1, p2 twice
    assert groups.iloc[3] == groups.iloc[4] != groups.iloc[0]  # no patient id, linked by hash h3
    assert groups.iloc[5] not in set(groups.iloc[:5])
    lonely = group_ids(manifest, hashes=pd.Series([pd.NA] * 6, dtype="string"))
    assert lonely.iloc[3] != lonely.iloc[4]  # rows without patient id and without hash stay apart


def test_explicit_groups_override(tmp_path: Path) -> None:
    manifest = _manifest(100)
    site = pd.Series(np.arange(len(manifest)) % 10)  # ten sites
    splits = make_splits(manifest, groups=site, seed=0)
    _assert_groups_whole(site, splits)


def test_numeric_stratification_bins_the_target() -> None:
    manifest = _manifest(300)
    values = np.random.default_rng(0).normal(size=len(manifest))
    manifest = manifest.with_columns(target=values)
    splits = make_splits(manifest, stratify="target", seed=0)
    for name in ("train", "val", "test"):
        assert manifest.frame["target"][splits == name].mean() == pytest.approx(0, abs=0.35)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"val": 0.6, "test": 0.5}, "leaves nothing"),
        ({"val": -0.1}, "val must be"),
        ({"test": 1.0}, "test must be"),
        ({"stratify": "nope"}, "no such column"),
    ],
)
def test_bad_arguments_raise_config_error(kwargs: dict, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        make_splits(_manifest(50), **kwargs)


def test_too_few_groups_raise() -> None:
    with pytest.raises(ConfigError, match="too few"):
        make_splits(_manifest(2), seed=0)


def test_kfold_keeps_groups_whole_and_balances() -> None:
    manifest = _manifest(250, positive=0.3)
    folds = kfold_splits(manifest, k=5, seed=0)
    assert sorted(folds.unique()) == [0, 1, 2, 3, 4]
    _assert_groups_whole(manifest.frame["patient_id"], folds)
    sizes = folds.value_counts()
    assert sizes.max() - sizes.min() <= 0.05 * len(manifest) + 2
    overall = (manifest.frame["label"] == "pos").mean()
    for k in range(5):
        assert (manifest.frame["label"][folds == k] == "pos").mean() == pytest.approx(overall, abs=0.07)
    assert folds.equals(kfold_splits(manifest, k=5, seed=0))
    assert not folds.equals(kfold_splits(manifest, k=5, seed=1))


def test_kfold_rejects_bad_k() -> None:
    with pytest.raises(ConfigError, match="k="):
        kfold_splits(_manifest(3), k=5)
    with pytest.raises(ConfigError, match="k must be"):
        kfold_splits(_manifest(30), k=1)


def test_split_file_round_trip(tmp_path: Path) -> None:
    manifest = _manifest(40)
    splits = make_splits(manifest, seed=0)
    folds = pd.Series(np.arange(len(manifest)) % 3)
    path = save_split_file(manifest, splits, tmp_path / "splits.csv", folds=folds)
    applied = apply_split_file(manifest, path)
    assert applied.frame["split"].tolist() == splits.tolist()
    assert applied.frame["fold"].tolist() == folds.tolist()
    with pytest.raises(FileExistsError):
        save_split_file(manifest, splits, path)
    save_split_file(manifest, splits, path, overwrite=True)


def test_apply_split_file_normalises_paths(tmp_path: Path) -> None:
    manifest = _manifest(3, per_patient=1)
    table = pd.DataFrame(
        {"image": ["./img/0000_0.png", "img\\0001_0.png", "img/0002_0.png"], "split": ["test", "train", "val"]}
    )
    table.to_csv(tmp_path / "s.csv", index=False)
    assert apply_split_file(manifest, tmp_path / "s.csv").frame["split"].tolist() == ["test", "train", "val"]


@pytest.mark.parametrize(
    ("table", "match"),
    [
        ({"image": ["img/0000_0.png", "img/0001_0.png", "img/9999.png"], "split": ["train"] * 3}, "not in"),
        ({"image": ["img/0000_0.png", "img/0001_0.png"], "split": ["train"] * 2}, "have no split"),
        (
            {"image": ["img/0000_0.png", "img/0001_0.png", "img/0002_0.png"], "split": ["train", "valid", "test"]},
            "valid",
        ),
        ({"image": ["img/0000_0.png", "img/0000_0.png", "img/0001_0.png"], "split": ["train"] * 3}, "more than once"),
        ({"path": ["img/0000_0.png"], "split": ["train"]}, "image"),
    ],
)
def test_apply_split_file_rejects_mismatches(tmp_path: Path, table: dict, match: str) -> None:
    pd.DataFrame(table).to_csv(tmp_path / "s.csv", index=False)
    with pytest.raises(ManifestError, match=match):
        apply_split_file(_manifest(3, per_patient=1), tmp_path / "s.csv")


def test_apply_split_file_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ManifestError, match="no such splits file"):
        apply_split_file(_manifest(3), tmp_path / "absent.csv")


# -- real data --------------------------------------------------------------------------------------------
@pytest.mark.shared_data
def test_fracatlas_duplicates_stay_together(shared_data: Path) -> None:
    from osteon.data.adapters import load_dataset
    from osteon.data.hashing import content_hashes

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        manifest = load_dataset(shared_data / "fracatlas")
    hashes = content_hashes(manifest, progress=False)
    duplicated = hashes.duplicated(keep=False)
    assert hashes[duplicated].nunique() == 5  # PROVENANCE.md: five duplicate groups in this subset
    for seed in (0, 1, 2):
        splits = make_splits(manifest, seed=seed, groups=group_ids(manifest, hashes=hashes))
        _assert_groups_whole(hashes[duplicated], splits[duplicated])
        overall = (manifest.frame["label"] == "fractured").mean()
        for name in ("train", "val", "test"):
            ratio = (manifest.frame["label"][splits == name] == "fractured").mean()
            assert ratio == pytest.approx(overall, abs=0.05)


@pytest.mark.shared_data
def test_knee_resplit_by_patient(shared_data: Path) -> None:
    from osteon.data.adapters import load_dataset

    manifest = load_dataset(shared_data / "knee_kl_chen2018")
    patients = manifest.frame["patient_id"]
    assert patients.notna().all() and patients.nunique() < len(manifest)  # both knees of some patients
    splits = make_splits(manifest, seed=0)
    _assert_groups_whole(patients, splits)
    grades = manifest.frame["label"]
    for name in ("train", "val", "test"):
        share = grades[splits == name].value_counts(normalize=True)
        overall = grades.value_counts(normalize=True)
        assert (share.reindex(overall.index) - overall).abs().max() < 0.05, name
