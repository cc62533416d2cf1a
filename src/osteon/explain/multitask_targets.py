"""Per-target CAMs of a multi-task model: each head explained by its own task's adapter, on its slice of the output.

``--class`` picks what to explain: nothing → every head's prediction (one map per target); ``all`` → every class of
every head; ``HEAD`` → that head's prediction; ``HEAD:CLASS`` → that class (or grade) of that head. Map names are
``"HEAD: CLASS"`` so one image's maps stay apart.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch

from osteon.errors import ConfigError
from osteon.explain.targets import ALL, CAM_ADAPTERS, CamTarget, _ImageModelAdapter, cam_adapter_for


class _HeadTarget:
    """An inner head's target applied to that head's slice of the multi-task output."""

    def __init__(self, fn: Callable[[torch.Tensor], torch.Tensor], part: slice) -> None:
        self.fn = fn
        self.part = part

    def __call__(self, output: torch.Tensor) -> torch.Tensor:
        return self.fn(output[..., self.part])


def requested_by_head(requested: Sequence[str] | None, heads: list[str]) -> dict[str, list[str] | None]:
    """``{head: the inner task's request}`` from ``--class`` values (see the module docstring)."""
    if not requested:
        return dict.fromkeys(heads)
    if any(r.lower() == ALL for r in requested):
        return {h: [ALL] for h in heads}
    out: dict[str, list[str] | None] = {}
    for item in requested:
        head, _, cls = item.partition(":")
        if head not in heads:
            raise ConfigError(
                f"--class {item!r}: {head!r} is not a target of this multi-task model ({', '.join(heads)}). "
                "Fix: pass a target name, TARGET:CLASS, or all."
            )
        if cls:
            wanted = out.get(head) or []
            out[head] = [*wanted, cls]
        else:
            out.setdefault(head, None)
    return out


@CAM_ADAPTERS.register("multitask")
class MultiTaskCamAdapter(_ImageModelAdapter):
    """One or more targets per head, through the head's task adapter (classify, grade, regress)."""

    def targets(self, task: Any, output: torch.Tensor, requested: Sequence[str] | None) -> list[CamTarget]:
        wanted = requested_by_head(requested, [name for name, _, _ in task.heads])
        out: list[CamTarget] = []
        for (name, _, inner), part in zip(task.heads, task.slices, strict=True):
            if name not in wanted:
                continue
            for target in cam_adapter_for(inner.name).targets(inner, output[..., part], wanted[name]):
                fn = _HeadTarget(target.fn, part)
                out.append(CamTarget(f"{name}: {target.name}", fn, target.score, target.region))
        return out
