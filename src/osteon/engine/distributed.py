"""Archive-scale prediction on Ray Data: a Manifest in shards, one part file per shard, resumable.

The job lives in a folder beside the output (``<out>_parts/``):

- ``job.json`` — the run, the manifest (and its SHA-256), shard size and batch size: a resumed job must match it;
- ``manifest.parquet`` — the rows to score (types kept), with absolute image paths (every node reads the same files);
- ``part-00000.csv`` ... — the predictions of each finished shard, written atomically (temporary name, then
  renamed), so a part file that exists is complete.

Each Ray actor loads :class:`~osteon.engine.predictor.Predictor` once and scores whole shards with
:meth:`~osteon.engine.predictor.Predictor.predict_manifest`, the same code as the single-process path. Shards are a
whole number of batches, so every batch a worker sees is a batch the single process would have seen: the
concatenated parts equal the single-process table. An interrupted job (Ctrl-C, a lost node) is restarted with
the same command and scores only the shards without a part file.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from osteon.data.manifest import Manifest
from osteon.errors import ConfigError

#: The extra that installs Ray Data.
EXTRA = "distributed"


def require_ray() -> Any:
    """Import :mod:`ray` or raise an error naming the extra to install."""
    try:
        import ray
        import ray.data
    except ImportError as err:
        raise ConfigError(
            f"--engine ray needs Ray Data, which is not installed ({err}). "
            f"Fix: pip install 'osteon[{EXTRA}]' (or pip install 'ray[data]')."
        ) from err
    return ray


@dataclass(frozen=True)
class ShardJob:
    """What a job folder was made for; a resume must ask for the same."""

    run: str
    manifest_sha256: str
    rows: int
    shard_size: int
    batch_size: int
    backend: str = "torch"

    @property
    def shards(self) -> int:
        return -(-self.rows // self.shard_size)

    def bounds(self, shard: int) -> tuple[int, int]:
        start = shard * self.shard_size
        return start, min(start + self.shard_size, self.rows)


def parts_folder(out: Path) -> Path:
    """The job folder of an output CSV: ``<out without suffix>_parts``."""
    return out.parent / f"{out.stem}_parts"


def part_path(folder: Path, shard: int) -> Path:
    return folder / f"part-{shard:05d}.csv"


def prepare_job(
    run: Path, manifest: Manifest, out: Path, *, shard_size: int, batch_size: int, backend: str = "torch"
) -> tuple[Path, ShardJob]:
    """Create the job folder, or reopen it when it holds the same job (resume); refuse a different one.

    ``shard_size`` is rounded up to a multiple of ``batch_size`` so that shards split no batch.
    """
    if shard_size < 1 or batch_size < 1:
        raise ConfigError(f"--shard-size and --batch-size must be ≥ 1; got {shard_size} and {batch_size}.")
    shard_size = -(-shard_size // batch_size) * batch_size
    frame = manifest.frame.copy()
    for column in ("image", "mask"):  # absolute, so that the job does not depend on the manifest's folder
        if column in frame:
            frame[column] = [str(manifest.resolve(p)) if isinstance(p, str) and p else p for p in frame[column]]
    text = frame.to_csv(index=False)
    job = ShardJob(
        run=str(Path(run).resolve()),
        manifest_sha256=hashlib.sha256(text.encode()).hexdigest(),
        rows=len(frame),
        shard_size=shard_size,
        batch_size=batch_size,
        backend=backend,
    )
    folder = parts_folder(out)
    record = folder / "job.json"
    if record.is_file():
        previous = json.loads(record.read_text())
        if previous != asdict(job):
            changed = sorted(k for k in previous.keys() | asdict(job).keys() if previous.get(k) != asdict(job).get(k))
            raise ConfigError(
                f"{folder} holds another job (differs in {', '.join(changed)}), so it cannot be resumed. "
                f"Fix: run the same command as before, or delete {folder} (or choose another --out) to start anew."
            )
        return folder, job
    folder.mkdir(parents=True, exist_ok=True)
    frame.to_parquet(folder / "manifest.parquet", index=False)
    _write_atomic(record, json.dumps(asdict(job), indent=2))
    return folder, job


def pending_shards(folder: Path, job: ShardJob) -> list[int]:
    """Shards without a part file (a part file is only ever complete: it is renamed into place)."""
    return [s for s in range(job.shards) if not part_path(folder, s).is_file()]


class ShardScorer:
    """A Ray actor: loads the Predictor once, then scores whole shards and writes their part files."""

    def __init__(self, folder: str, outputs: str | None, device: str | None = None) -> None:
        import warnings

        from osteon.engine.predictor import Predictor

        self.folder = Path(folder)
        self.job = ShardJob(**json.loads((self.folder / "job.json").read_text()))
        frame = pd.read_parquet(self.folder / "manifest.parquet")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # missing patient ids were reported by the driver
            self.manifest = Manifest(frame, root="/", name="archive")
        self.outputs = Path(outputs) if outputs else None
        options: dict[str, Any] = {"device": device} if device else {}  # GPU: once the Predictor takes a device
        if self.job.backend != "torch":
            options["backend"] = self.job.backend
        self.predictor = Predictor.from_run(self.job.run, **options)

    def __call__(self, batch: pd.DataFrame) -> pd.DataFrame:
        done = []
        for shard in batch["shard"].tolist():
            frame = score_shard(self.predictor, self.manifest, self.job, int(shard), out_dir=self.outputs)
            _write_atomic(part_path(self.folder, int(shard)), frame.to_csv(index=False))
            done.append({"shard": int(shard), "rows": len(frame)})
        return pd.DataFrame(done)


def score_shard(predictor: Any, manifest: Manifest, job: ShardJob, shard: int, *, out_dir: Path | None) -> pd.DataFrame:
    """Predictions of one shard, with the DICOM UIDs, exactly as the single-process path writes them."""
    import warnings

    from osteon.io.uids import add_uid_columns

    start, stop = job.bounds(shard)
    rows = pd.Series(False, index=manifest.frame.index)
    rows.iloc[start:stop] = True
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        part = manifest.subset(rows)
    frame = predictor.predict_manifest(part, batch_size=job.batch_size, progress=False, out_dir=out_dir)
    return add_uid_columns(frame)


def predict_sharded(
    run: str | Path,
    manifest: Manifest,
    out: str | Path,
    *,
    workers: int = 2,
    shard_size: int = 256,
    batch_size: int = 32,
    gpus_per_worker: float = 0.0,
    address: str | None = None,
    backend: str = "torch",
    on_shard: Callable[[int, int], None] | None = None,
) -> pd.DataFrame:
    """Score ``manifest`` with ``workers`` Ray actors; write ``out`` (CSV) when every shard is done.

    Args:
        run: Run directory of the model.
        manifest: Rows to score (any Manifest; image paths are resolved here).
        out: Final CSV. Part files go to ``<out>_parts/``, mask files (segmentation) to ``<out>_outputs/``
            — on a cluster both must be on storage every node can write.
        workers: Ray actors (each holds one model).
        shard_size: Rows per shard, rounded up to a multiple of ``batch_size``.
        batch_size: Images per forward pass.
        gpus_per_worker: GPUs reserved per actor (0: CPU).
        address: Ray cluster address (``"auto"`` inside a cluster); ``None`` joins the running local instance or
            starts one.
        backend: The Predictor's backend (``torch``, ``onnx`` ...), loaded by every worker.
        on_shard: Called with (shards done, shards in all) after each shard.

    Returns:
        The full predictions table (as written to ``out``).
    """
    ray = require_ray()
    if workers < 1:
        raise ConfigError(f"--workers must be ≥ 1; got {workers}.")
    if gpus_per_worker > 0 and not _predictor_uses_gpu():
        raise ConfigError(
            f"--gpus-per-worker {gpus_per_worker}: the Predictor runs its model on the CPU, so a reserved GPU would "
            "sit idle. Fix: leave --gpus-per-worker at 0 (CPU workers) until the Predictor can run on a GPU."
        )
    out = Path(out)
    folder, job = prepare_job(Path(run), manifest, out, shard_size=shard_size, batch_size=batch_size, backend=backend)
    todo = pending_shards(folder, job)
    outputs = out.parent / f"{out.stem}_outputs"
    if todo:
        if not ray.is_initialized():
            ray.init(address=address, ignore_reinit_error=True, log_to_driver=False)
        data = ray.data.from_items([{"shard": s} for s in todo])
        scored = data.map_batches(
            ShardScorer,
            fn_constructor_args=(str(folder), str(outputs), "cuda" if gpus_per_worker > 0 else None),
            batch_size=1,
            batch_format="pandas",
            concurrency=min(workers, len(todo)),
            num_cpus=1,
            num_gpus=gpus_per_worker or None,
        )
        finished = job.shards - len(todo)
        for _ in scored.iter_rows():  # drives the job; each row is a shard whose part file now exists
            finished += 1
            if on_shard is not None:
                on_shard(finished, job.shards)
    return collect_parts(folder, job, out)


def collect_parts(folder: Path, job: ShardJob, out: Path) -> pd.DataFrame:
    """Concatenate the part files in shard order into ``out``; refuse when a shard is missing."""
    missing = pending_shards(folder, job)
    if missing:
        raise ConfigError(
            f"{folder}: shards {missing[:10]} have no part file. Fix: run the same command again to score them."
        )
    frames = [pd.read_csv(part_path(folder, s), dtype=str, keep_default_na=False) for s in range(job.shards)]
    table = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    out.parent.mkdir(parents=True, exist_ok=True)
    _write_atomic(out, table.to_csv(index=False))
    return table


def _predictor_uses_gpu() -> bool:
    """Whether :class:`~osteon.engine.predictor.Predictor` can place its model on a GPU (a ``device`` option)."""
    import inspect

    from osteon.engine.predictor import Predictor

    return "device" in inspect.signature(Predictor.from_run).parameters


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)
