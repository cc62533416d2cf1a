"""Fixtures of the server tests (helpers live in ``_helpers.py``)."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def phantom_image(phantom_dataset: Path) -> Path:
    """One phantom radiograph (PNG, 64 px)."""
    return sorted((phantom_dataset.parent / "images").glob("*.png"))[0]


@pytest.fixture(scope="session")
def phantom_pipeline(phantom_dataset: Path, trained_classifier: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A pipeline file: whole-image classifier + bone segmenter (tiny_unet, 1 epoch) → classifier on mask crops."""
    import yaml

    from osteon.engine import train

    folder = tmp_path_factory.mktemp("pipeline")
    train(
        task="segment",
        data=str(phantom_dataset),
        model="tiny_unet",
        epochs=1,
        image_size=64,
        batch_size=16,
        lr=1e-2,
        out=str(folder / "seg"),
        progress=False,
    )
    spec = {
        "name": "phantom-serve",
        "version": "0.1",
        "runs": {"cls": str(trained_classifier), "seg": "seg"},
        "stages": [
            {"name": "whole", "run": "cls"},
            {"name": "bone", "run": "seg"},
            {"name": "crops", "run": "cls", "input": {"from": "bone", "crop": {"min_size": 16, "top_k": 1}}},
        ],
        "findings": [
            {"name": "fracture", "stage": "whole", "class": "1"},
            {"name": "bone", "stage": "bone"},
            {"name": "crop_fracture", "stage": "crops", "class": "1"},
        ],
    }
    (folder / "serve.yml").write_text(yaml.safe_dump(spec, sort_keys=False))
    return folder / "serve.yml"
