"""Volumes: reading real NIfTI and synthetic DICOM series, orientation, resampling round trips, bad series,
3D metrics in mm/mL, sliding-window inference and a 3D U-Net that learns a phantom structure."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from osteon.data.volumes import (
    Volume,
    VolumeError,
    check_pair,
    read_label_volume,
    read_volume,
    resample,
    to_canonical,
    world_position,
)


# -- synthetic DICOM series ---------------------------------------------------------------------------------------
def write_series(
    folder: Path,
    n: int = 6,
    *,
    step: float = 2.5,
    skip: int | None = None,
    spacing_of: dict[int, list[float]] | None = None,
    uid: str = "1.2.3.4",
    shape: tuple[int, int] = (8, 10),
) -> list[np.ndarray]:
    """Axial slices (IOP 1,0,0,0,1,0) at z = k·step, written in shuffled order; returns the pixel arrays."""
    from pydicom.dataset import FileDataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    planes = []
    for k in rng.permutation(n):
        if k == skip:
            continue
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.2"
        meta.MediaStorageSOPInstanceUID = generate_uid()
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds = FileDataset(str(folder / f"s{k}.dcm"), {}, file_meta=meta, preamble=b"\0" * 128)
        ds.SOPClassUID, ds.SOPInstanceUID = meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID
        ds.Modality, ds.SeriesInstanceUID, ds.PatientID = "CT", uid, "P1"
        ds.Rows, ds.Columns = shape
        ds.PixelSpacing = spacing_of.get(int(k), [0.8, 0.7]) if spacing_of else [0.8, 0.7]
        ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
        ds.ImagePositionPatient = [-10.0, -20.0, float(k) * step]
        ds.SliceThickness = step
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 0
        plane = (np.arange(shape[0] * shape[1]).reshape(shape) + 100 * int(k)).astype(np.uint16)
        ds.PixelData = plane.tobytes()
        ds.save_as(folder / f"s{k}.dcm", enforce_file_format=True)
        planes.append((int(k), plane))
    return [p for _, p in sorted(planes)]


def test_dicom_series_is_sorted_and_placed(tmp_path: Path) -> None:
    planes = write_series(tmp_path / "ct")
    volume = read_volume(tmp_path / "ct")
    assert volume.shape == (6, 8, 10) and volume.spacing == pytest.approx((2.5, 0.8, 0.7))
    assert np.array_equal(volume.array, np.stack(planes).astype(np.float32))  # sorted by position, not by name
    # voxel (d, h, w) at LPS (-10 + 0.7 w, -20 + 0.8 h, 2.5 d) → RAS (10 - 0.7 w, 20 - 0.8 h, 2.5 d)
    assert world_position(volume, (2, 3, 4)) == pytest.approx([10 - 2.8, 20 - 2.4, 5.0])
    assert volume.axcodes == ("S", "P", "L") and volume.meta["files"] == 6


def test_bad_series_get_clear_errors(tmp_path: Path) -> None:
    write_series(tmp_path / "gap", n=7, skip=3)
    with pytest.raises(VolumeError, match="missing between"):
        read_volume(tmp_path / "gap")
    write_series(tmp_path / "mixed", spacing_of={2: [0.5, 0.5]})
    with pytest.raises(VolumeError, match="mixed spacing"):
        read_volume(tmp_path / "mixed")
    write_series(tmp_path / "two", n=3)
    write_series(tmp_path / "two" / "b", n=3, uid="9.9.9")
    with pytest.raises(VolumeError, match="2 series"):
        read_volume(tmp_path / "two")
    assert read_volume(tmp_path / "two", series_uid="9.9.9").shape == (3, 8, 10)


def test_a_2d_file_given_as_a_volume_is_refused(tmp_path: Path) -> None:
    from PIL import Image

    Image.fromarray(np.zeros((8, 8), np.uint8)).save(tmp_path / "flat.png")
    with pytest.raises(VolumeError, match="2D image"):
        read_volume(tmp_path / "flat.png")


# -- orientation and resampling -----------------------------------------------------------------------------------
def _oblique_volume() -> Volume:
    rng = np.random.default_rng(0)
    array = rng.random((5, 6, 7)).astype(np.float32)
    # axes run (R, S, P) with spacing (1.5, 2, 3): a sagittal-like acquisition
    affine = np.array([[1.5, 0, 0, -3], [0, 0, -3, 4], [0, 2, 0, -5], [0, 0, 0, 1]], dtype=float)
    return Volume(array, (1.5, 2.0, 3.0), affine)


def test_canonical_orientation_keeps_world_positions() -> None:
    volume = _oblique_volume()
    assert volume.axcodes == ("R", "S", "P")
    canonical = to_canonical(volume)
    assert canonical.axcodes == ("S", "P", "L") and canonical.shape == (6, 7, 5)
    assert canonical.spacing == pytest.approx((2.0, 3.0, 1.5))
    for index in [(0, 0, 0), (4, 5, 6), (2, 1, 3)]:
        world = world_position(volume, index)
        new_index = np.linalg.solve(canonical.affine, np.r_[world, 1.0])[:3]
        assert np.allclose(new_index, np.round(new_index))
        assert canonical.array[tuple(np.round(new_index).astype(int))] == volume.array[index]
    assert np.array_equal(to_canonical(canonical).array, canonical.array)  # idempotent


def test_resampling_round_trip_and_geometry() -> None:
    zz, yy, xx = np.meshgrid(np.arange(12), np.arange(16), np.arange(16), indexing="ij")
    smooth = (np.sin(zz / 3) + np.cos(yy / 4) + xx / 16).astype(np.float32)
    volume = Volume(smooth, (3.0, 1.0, 1.0), np.diag([1.0, 1.0, 3.0, 1.0])[:, [2, 1, 0, 3]])
    fine = resample(volume, (1.0, 1.0, 1.0))
    assert fine.shape == (36, 16, 16) and fine.spacing == (1.0, 1.0, 1.0)
    # the first and last voxels' world extent is kept (centres aligned)
    assert world_position(fine, (1, 0, 0))[2] == pytest.approx(world_position(volume, (0, 0, 0))[2])
    back = resample(fine, (3.0, 1.0, 1.0))
    assert back.shape == volume.shape
    assert np.abs(back.array - smooth)[1:-1].max() < 0.05  # linear interpolation of a smooth field
    labels = Volume((smooth > 1).astype(np.uint8), volume.spacing, volume.affine)
    fine_labels = resample(labels, (1.0, 1.0, 1.0), label=True)
    assert fine_labels.array.dtype == np.uint8 and set(np.unique(fine_labels.array)) <= {0, 1}
    assert fine_labels.volume_ml() == pytest.approx(labels.volume_ml(), rel=0.05)


# -- real files ---------------------------------------------------------------------------------------------------
@pytest.mark.shared_data
def test_real_smoke_volumes_read_orient_and_pair(shared_data: Path) -> None:
    root = shared_data / "volumes_smoke"
    mri = read_volume(root / "spine_mri_t2" / "t2.nii.gz")
    assert mri.shape == (52, 55, 60) and mri.spacing == pytest.approx((1.0, 1.0, 1.0))
    cord = read_label_volume(root / "spine_mri_t2" / "t2_seg-manual_labeled.nii.gz")
    check_pair(mri, cord)
    assert set(np.unique(cord.array)) == {0, 2, 3, 4, 5}  # cord labelled by vertebral level
    canonical, cord_c = to_canonical(mri), to_canonical(cord)
    assert canonical.axcodes == ("S", "P", "L") and cord_c.volume_ml() == pytest.approx(cord.volume_ml())
    ct = read_volume(root / "abdomen_ct_small" / "example_ct_sm.nii.gz")
    assert ct.shape == (30, 101, 122) and ct.spacing == pytest.approx((3.0, 3.0, 3.0))
    assert ct.array.min() < -500  # Hounsfield units kept
    seg = read_label_volume(root / "abdomen_ct_small" / "example_seg.nii.gz")
    check_pair(ct, seg)
    with pytest.raises(VolumeError, match="not on the grid"):
        check_pair(mri, seg)
    iso = resample(ct, (6.0, 6.0, 6.0))
    assert iso.shape == (15, 50, 61)


@pytest.mark.shared_data
def test_sliding_window_over_a_real_volume(shared_data: Path) -> None:
    import torch

    from osteon.models.volumes import create_volume_model, sliding_window_logits

    ct = to_canonical(read_volume(shared_data / "volumes_smoke" / "abdomen_ct_small" / "example_ct_sm.nii.gz"))
    x = torch.from_numpy(np.clip((ct.array.astype(np.float32) + 200) / 400, 0, 1))[None, None]
    model = create_volume_model("tiny_unet3d", 1, 2).eval()
    logits = sliding_window_logits(model, x, roi=(16, 32, 32), sw_batch_size=2)
    assert logits.shape == (1, 2, *ct.shape) and torch.isfinite(logits).all()


# -- metrics ------------------------------------------------------------------------------------------------------
def test_volume_metrics_in_mm_and_ml() -> None:
    from osteon.metrics.volumes import volume_metrics, volume_segmentation_report

    truth = np.zeros((10, 10, 10), bool)
    truth[2:6, 2:6, 2:6] = True
    pred = np.zeros_like(truth)
    pred[2:6, 2:6, 3:7] = True  # shifted one voxel along w
    m = volume_metrics(truth, pred, (2.0, 1.0, 0.5))
    assert m["dice"] == pytest.approx(0.75)
    assert m["truth_ml"] == pytest.approx(64 * 1.0 / 1000) and m["volume_error_ml"] == pytest.approx(0.0)
    assert m["hd95_mm"] == pytest.approx(0.5)  # one voxel along w is 0.5 mm
    rows = [volume_metrics(truth, pred, (1, 1, 1)) for _ in range(4)]
    report = volume_segmentation_report(rows, n_resamples=50)
    assert report["dice"]["estimate"] == pytest.approx(0.75) and "volume_ml" in report


@pytest.mark.slow
def test_3d_unet_learns_a_phantom_structure() -> None:
    """A tiny MONAI 3D U-Net trained for a few steps segments the phantom ellipsoid (Dice, volume in mL)."""
    import torch

    from osteon.data.phantom_volumes import make_volume_phantom
    from osteon.metrics.volumes import volume_metrics
    from osteon.models.volumes import create_volume_model, sliding_window_logits

    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    pairs = [make_volume_phantom(rng, shape=(16, 32, 32)) for _ in range(6)]
    x = torch.stack([torch.from_numpy(v.array)[None] for v, _ in pairs])
    y = torch.stack([torch.from_numpy(lab.array.astype(np.float32))[None] for _, lab in pairs])
    model = create_volume_model("tiny_unet3d", 1, 1)
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-2)
    from monai.losses import DiceCELoss

    loss_fn = DiceCELoss(sigmoid=True)
    for _ in range(150):
        optimiser.zero_grad()
        loss = loss_fn(model(x[:5]), y[:5])
        loss.backward()
        optimiser.step()
    model.eval()
    image, label = pairs[5]
    logits = sliding_window_logits(model, torch.from_numpy(image.array)[None, None], roi=(16, 16, 16))
    pred = (torch.sigmoid(logits)[0, 0] > 0.5).numpy()
    m = volume_metrics(label.array, pred, image.spacing)
    assert m["dice"] > 0.8, m
    assert abs(m["volume_error_ml"]) < 0.25 * m["truth_ml"]
