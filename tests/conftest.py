"""Shared fixtures: the real datasets in ../shared/data, skipped with a reason when absent."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

# Two xdist workers share two cores: one torch thread each avoids oversubscription, which made
# tiny models train 3-4x slower (OpenMP threads waiting for a core busy with the other worker).
torch.set_num_threads(1)

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """Path of ../shared/data (the real datasets); skips the test when it is not there."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real datasets not found at {SHARED_DATA} (they live beside the repo as ../shared/data)")
    return SHARED_DATA


@pytest.fixture(scope="session")
def phantom_dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 96-image phantom dataset (manifest.csv with fractures, KL grades, joint-space widths, split)."""
    from osteon.data.phantom import make_phantom_dataset

    out = tmp_path_factory.mktemp("phantom")
    make_phantom_dataset(out, images=96, size=64, seed=0)
    return out / "manifest.csv"


@pytest.fixture(scope="session")
def trained_classifier(phantom_dataset: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fracture classifier trained for 4 epochs on the phantoms (shared by evaluate/predict tests)."""
    from osteon.engine import train

    out = tmp_path_factory.mktemp("runs") / "classify"
    train(
        task="classify",
        data=str(phantom_dataset),
        target="fractured",
        model="tiny_cnn",
        epochs=4,
        image_size=48,
        batch_size=16,
        lr=3e-3,
        out=str(out),
        progress=False,
    )
    return out
