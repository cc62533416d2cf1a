"""The engine: one Lightning loop around a Task; train, evaluate, predict; the run directory.

``train``, ``evaluate`` and ``Predictor`` import torch and Lightning (seconds), so they are loaded on
first use (a module ``__getattr__``); ``TrainConfig``, ``TaskName`` and ``RunDir`` are light. Thus
``from osteon.engine import train`` works as before, while ``osteon --help`` and reading a config stay fast.
"""

from __future__ import annotations

import importlib
import sys
import types
from typing import TYPE_CHECKING, Any

from osteon.engine.config import TaskName, TrainConfig
from osteon.engine.rundir import RunDir

if TYPE_CHECKING:
    from osteon.engine.evaluate import evaluate
    from osteon.engine.fit import train
    from osteon.engine.predictor import Predictor
    from osteon.engine.pretrain import pretrain

#: Public name → the module that defines it (imported when the name is first used).
_LAZY = {
    "train": "osteon.engine.fit",
    "evaluate": "osteon.engine.evaluate",
    "Predictor": "osteon.engine.predictor",
    "pretrain": "osteon.engine.pretrain",
}

__all__ = ["Predictor", "RunDir", "TaskName", "TrainConfig", "evaluate", "pretrain", "train"]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        setattr(sys.modules[__name__], name, value)
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})


class _EngineModule(types.ModuleType):
    """Keeps ``osteon.engine.evaluate`` the function once the submodule of the same name is imported.

    Python binds a submodule to its package's attribute after importing it, which would replace the lazily
    loaded ``evaluate`` function by the ``osteon.engine.evaluate`` module (the eager import used to re-bind it).
    """

    def __setattr__(self, name: str, value: Any) -> None:
        if isinstance(value, types.ModuleType) and _LAZY.get(name) == value.__name__:
            value = getattr(value, name, value)
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _EngineModule
