"""What ``train(resume=...)`` does around the fit: refuse pointless resumes, keep the model it may replace.

A finished run that is extended (``--resume RUN --epochs N`` with a larger N) may select a later epoch as its
best: ``model.pt`` is then replaced, and everything evaluated before (``metrics.json``, test predictions, the
report) describes the previous model. The previous model is therefore kept as ``model_epochs<K>.pt`` (K: the
epochs it was selected from) and the replacement is recorded in ``training.json`` (``replaced_models``) and
announced with a warning. When the best epoch stays the same, ``model.pt`` keeps the same weights and no
copy is kept.
"""

from __future__ import annotations

import shutil
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from osteon.engine.config import TrainConfig
from osteon.engine.rundir import RunDir
from osteon.errors import RunDirError


@dataclass(frozen=True)
class PreviousModel:
    """The ``model.pt`` of a finished run before it was extended, and where a copy of it lies."""

    copy: Path
    record: dict[str, Any]  # its training.json

    @property
    def best_epoch(self) -> int:
        return int(self.record.get("best_epoch", -1))


def before_resume(run: RunDir, cfg: TrainConfig) -> PreviousModel | None:
    """Check that a resume has epochs left to train and copy a finished run's ``model.pt`` aside.

    Returns:
        The previous model (``None`` for a run that never finished: it has no ``model.pt``).

    Raises:
        RunDirError: the run already trained ``cfg.epochs`` epochs or more.
    """
    if not run.model.is_file():
        return None
    record = run.read_json(run.training)
    done = int(record.get("epochs_run", 0))
    if done and cfg.epochs <= done:
        raise RunDirError(
            f"{run.path} already trained {done} epochs (model.pt is written). Fix: pass a larger --epochs to "
            f"train on (e.g. `osteon train --resume {run.path} --epochs {done + max(1, done // 2)}`)."
        )
    copy = run.path / f"model_epochs{done}.pt"
    shutil.copy2(run.model, copy)
    return PreviousModel(copy=copy, record=record)


def after_resume(run: RunDir, previous: PreviousModel | None, *, finished: bool) -> None:
    """Keep the previous model's copy only when ``model.pt`` now holds another epoch, and record that.

    Args:
        run: The resumed run.
        previous: What :func:`before_resume` returned.
        finished: Whether the resumed training finished (``model.pt`` rewritten); otherwise the untouched
            ``model.pt`` is still the previous model and the copy is removed.
    """
    if previous is None or not previous.copy.is_file():
        return
    record = run.read_json(run.training)
    if not finished or int(record.get("best_epoch", -1)) == previous.best_epoch:
        previous.copy.unlink()  # model.pt holds the same epoch's weights as before
        return
    name = (previous.record.get("monitor") or {}).get("name", "score")
    entry = {
        "file": previous.copy.name,
        "best_epoch": previous.best_epoch,
        "best_score": previous.record.get("best_score"),
        "epochs_run": previous.record.get("epochs_run"),
        "replaced_by_epoch": record.get("best_epoch"),
    }
    record["replaced_models"] = [*record.get("replaced_models", []), entry]
    run.write_json(run.training, record)
    warnings.warn(
        f"{run.model}: now holds epoch {int(record['best_epoch']) + 1} ({name} {_fmt(record.get('best_score'))})"
        f" of {record.get('epochs_run')} epochs, instead of epoch {previous.best_epoch + 1}"
        f" ({name} {_fmt(previous.record.get('best_score'))}). The previous model is kept as {previous.copy.name};"
        " evaluations and reports made before describe it: run `osteon evaluate` again for the new one.",
        UserWarning,
        stacklevel=3,
    )


def _fmt(value: Any) -> str:
    return f"{float(value):.4g}" if isinstance(value, int | float) else "n/a"
