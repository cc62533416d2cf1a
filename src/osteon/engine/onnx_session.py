"""An ONNX Runtime session that the tasks can call like their PyTorch model (extra ``onnx``).

The tasks' inference code (``predict_rows``, ``predict_image``, sliding windows for ``segment``) calls
``model(images, covariates)`` and reads a tensor back. :class:`OnnxModel` answers that call with ONNX Runtime,
so one code path serves both backends and the ONNX predictions are post-processed exactly like PyTorch's.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from osteon.errors import ConfigError

EXTRA_HINT = "pip install 'osteon[onnx]'"


def import_onnxruntime() -> Any:
    """``onnxruntime``, or a :class:`ConfigError` naming the extra to install."""
    try:
        import onnxruntime
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ConfigError(f"ONNX inference needs onnxruntime (extra `onnx`). Fix: {EXTRA_HINT}.") from exc
    return onnxruntime


def session_options(threads: int | None = None) -> Any:
    """Session options: all graph optimisations, ``threads`` intra-op threads (default: torch's thread count)."""
    ort = import_onnxruntime()
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.intra_op_num_threads = int(threads or torch.get_num_threads() or os.cpu_count() or 1)
    options.inter_op_num_threads = 1
    options.log_severity_level = 3  # errors only
    return options


class OnnxModel(nn.Module):
    """ONNX Runtime behind the ``model(images, covariates) -> logits`` call of an Osteon model.

    Args:
        path: An ``.onnx`` file written by :func:`osteon.engine.export_onnx.export_onnx`.
        threads: ONNX Runtime intra-op threads (default: ``torch.get_num_threads()``).

    Shapes:
        ``images`` ``(B, 1, H, W)`` float32 (normalised); ``covariates`` ``(B, D)`` when the model was trained with
        covariates; returns the first output (``logits``) as a CPU float32 tensor.
    """

    def __init__(self, path: str | Path, *, threads: int | None = None) -> None:
        super().__init__()
        ort = import_onnxruntime()
        self.path = Path(path)
        if not self.path.is_file():
            raise ConfigError(f"{self.path} does not exist. Fix: run `osteon export RUN --format onnx` first.")
        self.session = ort.InferenceSession(
            str(self.path), sess_options=session_options(threads), providers=["CPUExecutionProvider"]
        )
        self.input_names = [i.name for i in self.session.get_inputs()]
        self.eval()

    def forward(self, images: torch.Tensor, covariates: torch.Tensor | None = None) -> torch.Tensor:
        feed: dict[str, np.ndarray] = {"image": _as_float32(images)}
        if "covariates" in self.input_names:
            if covariates is None:
                raise ConfigError(f"{self.path.name} takes covariates; none were given.")
            feed["covariates"] = _as_float32(covariates)
        return torch.from_numpy(self.session.run(None, feed)[0])


def _as_float32(tensor: torch.Tensor) -> np.ndarray:
    return np.ascontiguousarray(tensor.detach().cpu().numpy(), dtype=np.float32)


#: Predictor backends and the run file each one reads.
BACKENDS = ("torch", "onnx", "onnx-int8")


def onnx_model_of_run(run: Any, backend: str, *, threads: int | None = None) -> OnnxModel:
    """The exported model of a :class:`~osteon.engine.rundir.RunDir` for ``backend`` (``onnx`` / ``onnx-int8``).

    Raises:
        ConfigError: unknown backend, or the run has not been exported (the message gives the command).
    """
    if backend not in BACKENDS:
        raise ConfigError(f"backend={backend!r} is not one of {', '.join(BACKENDS)}.")
    import_onnxruntime()  # a missing extra is named before a missing file
    path = run.onnx_int8_model if backend == "onnx-int8" else run.onnx_model
    if not path.is_file():
        flag = " --quantize int8" if backend == "onnx-int8" else ""
        raise ConfigError(
            f"{run.path} has no {path.relative_to(run.path)}. Fix: run `osteon export {run.path} --format onnx{flag}`."
        )
    return OnnxModel(path, threads=threads)
