"""Fixtures of the server tests (helpers live in ``_helpers.py``)."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def phantom_image(phantom_dataset: Path) -> Path:
    """One phantom radiograph (PNG, 64 px)."""
    return sorted((phantom_dataset.parent / "images").glob("*.png"))[0]
