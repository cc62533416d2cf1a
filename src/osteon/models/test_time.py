"""Test-time augmentation, as the engine sees it: a switch on the model, not a model name.

A network that predicts with test-time augmentation (the default detector's flip test, ``models/centernet.py``)
keeps it behind a boolean ``flip_test`` attribute of the module that does it. The engine's validation during
training only monitors progress and predicts in one pass; :func:`single_pass` turns the switch off for a block
in any model that has one, without the engine importing the model's module.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from torch import nn

#: The attribute a module sets to ``True`` when it predicts with test-time flips.
SWITCH = "flip_test"


@contextmanager
def single_pass(model: nn.Module) -> Iterator[None]:
    """Inside the block, every module of ``model`` with a test-time-augmentation switch predicts in one pass; the
    switches are restored after it (also when the block raises)."""
    switched = [m for m in model.modules() if getattr(m, SWITCH, False) is True]
    for m in switched:
        setattr(m, SWITCH, False)
    try:
        yield
    finally:
        for m in switched:
            setattr(m, SWITCH, True)
