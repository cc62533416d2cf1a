"""Trainer backends besides the engine's own Lightning loop, chosen by the task's ``trainer_backend``.

A backend trains a prepared run directory and finishes it through :mod:`osteon.engine.export`, so its runs
predict, evaluate and report like any other. Backends with heavy or restrictively licensed dependencies
(Ultralytics is AGPL-3.0) import them lazily and name the extra to install.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from osteon.registry import Registry

#: name → ``fit(run, cfg, task, *, resume, progress, options) -> None``
BACKENDS: Registry[Callable[..., Any]] = Registry("trainer backend")


def get_backend(name: str) -> Callable[..., Any]:
    """The fit function of a registered backend (raises with the registered names when unknown)."""
    return BACKENDS.get(name)


# Built-in backends register themselves on import (explicit list, no discovery).
from osteon.engine.backends import yolo  # noqa: E402

__all__ = ["BACKENDS", "get_backend", "yolo"]
