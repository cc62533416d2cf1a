"""Osteon: deep learning on musculoskeletal images."""

__version__ = "0.1.0"
