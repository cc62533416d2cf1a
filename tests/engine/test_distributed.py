"""``osteon predict --engine ray``: shards on a local Ray instance with 2 workers equal the single process; a job
interrupted midway resumes where it stopped."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from osteon.cli.main import app
from osteon.data.manifest import Manifest
from osteon.data.phantom_dicom import write_phantom_dicoms
from osteon.engine.distributed import parts_folder, pending_shards, predict_sharded, prepare_job
from osteon.errors import ConfigError

ray = pytest.importorskip("ray", reason="extra `distributed` (ray[data]) is not installed")
pytestmark = pytest.mark.slow  # starting Ray and two workers that load torch takes ~20 s


@pytest.fixture(scope="module")
def local_ray() -> Iterator[None]:
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, ignore_reinit_error=True)
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def archive(phantom_dataset: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A Manifest CSV of 30 PNGs, 2 DICOMs (UIDs in the output) and one missing file (an error row)."""
    folder = tmp_path_factory.mktemp("archive")
    phantoms = Manifest.load(phantom_dataset)
    frame = phantoms.frame.head(30).copy()
    frame["image"] = [str(phantoms.resolve(p)) for p in frame["image"]]
    frame["mask"] = ""
    dicoms = write_phantom_dicoms(phantoms, folder / "dicom", limit=2)
    extra = pd.DataFrame({"image": [*map(str, dicoms), str(folder / "gone.png")], "patient_id": ["D1", "D1", "X"]})
    table = pd.concat([frame, extra], ignore_index=True)
    table.to_csv(folder / "manifest.csv", index=False)
    return folder / "manifest.csv"


def _local(run: Path, manifest: Path, out: Path) -> str:
    result = CliRunner().invoke(app, ["predict", str(run), str(manifest), "--out", str(out), "--batch-size", "8"])
    assert result.exit_code == 0, result.output
    return out.read_text()


def test_two_workers_equal_the_single_process(
    local_ray: None, trained_classifier: Path, archive: Path, tmp_path: Path
) -> None:
    expected = _local(trained_classifier, archive, tmp_path / "local.csv")
    out = tmp_path / "ray.csv"
    args = ["predict", str(trained_classifier), str(archive), "--out", str(out), "--engine", "ray"]
    result = CliRunner().invoke(app, [*args, "--workers", "2", "--shard-size", "10", "--batch-size", "8"])
    assert result.exit_code == 0, result.output
    assert "32 predicted, 1 unreadable" in result.stderr
    assert out.read_text() == expected  # byte for byte, UIDs and the error row included
    table = pd.read_csv(out, dtype=str, keep_default_na=False)
    assert (table["sop_instance_uid"] != "").sum() == 2 and (table["error"] != "").sum() == 1
    assert sorted(p.name for p in parts_folder(out).glob("part-*.csv")) == [f"part-0000{i}.csv" for i in range(3)]


def test_interrupted_job_resumes_where_it_stopped(
    local_ray: None, trained_classifier: Path, archive: Path, tmp_path: Path
) -> None:
    expected = _local(trained_classifier, archive, tmp_path / "local.csv")
    manifest, out = Manifest.load(archive), tmp_path / "ray.csv"
    seen: list[int] = []

    def interrupt(done: int, total: int) -> None:
        seen.append(done)
        raise KeyboardInterrupt  # Ctrl-C after the first finished shard

    with pytest.raises(KeyboardInterrupt):
        predict_sharded(trained_classifier, manifest, out, shard_size=8, batch_size=8, on_shard=interrupt)
    folder = parts_folder(out)
    _, job = prepare_job(trained_classifier, manifest, out, shard_size=8, batch_size=8)
    left = pending_shards(folder, job)
    if not left:  # the other worker finished every shard before Ctrl-C reached the driver (a busy machine):
        for shard in (3, 4):  # make two of them unfinished, as a kill mid-shard leaves them
            (folder / f"part-{shard:05d}.csv").unlink()
        left = pending_shards(folder, job)
    assert seen and not out.exists() and 0 < len(left) < job.shards == 5
    finished = {
        s: part.stat().st_mtime_ns for s in range(job.shards) if (part := folder / f"part-{s:05d}.csv").exists()
    }
    resumed: list[int] = []
    table = predict_sharded(
        trained_classifier, manifest, out, shard_size=8, batch_size=8, on_shard=lambda d, t: resumed.append(d)
    )
    assert len(resumed) == len(left) and resumed[-1] == job.shards  # only the missing shards were scored
    for shard, stamp in finished.items():
        assert (folder / f"part-{shard:05d}.csv").stat().st_mtime_ns == stamp
    assert out.read_text() == expected and len(table) == len(manifest)


def test_a_different_job_in_the_same_folder_is_refused(trained_classifier: Path, archive: Path, tmp_path: Path):
    manifest, out = Manifest.load(archive), tmp_path / "ray.csv"
    prepare_job(trained_classifier, manifest, out, shard_size=8, batch_size=8)
    with pytest.raises(ConfigError, match="shard_size"):
        prepare_job(trained_classifier, manifest, out, shard_size=16, batch_size=8)
    other = Manifest(manifest.frame.head(5), manifest.root)
    with pytest.raises(ConfigError, match="manifest_sha256"):
        prepare_job(trained_classifier, other, out, shard_size=8, batch_size=8)
    shutil.rmtree(parts_folder(out))
    prepare_job(trained_classifier, other, out, shard_size=8, batch_size=8)  # a fresh folder starts anew
