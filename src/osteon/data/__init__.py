"""Manifest, dataset adapters, checks, splits, phantoms, transforms and torch datasets."""

from osteon.data.manifest import Manifest

__all__ = ["Manifest"]
