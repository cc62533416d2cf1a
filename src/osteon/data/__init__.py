"""Manifest, dataset adapters, checks, splits, phantoms, transforms and torch datasets."""

from osteon.data.adapters import load_dataset
from osteon.data.manifest import Manifest

__all__ = ["Manifest", "load_dataset"]
