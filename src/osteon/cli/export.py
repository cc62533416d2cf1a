"""``osteon export RUN --format onnx [--quantize int8]``: the run's model for ONNX Runtime (extra ``onnx``)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from osteon.cli._common import fail, handle_errors, show_warnings, stderr_console


def export_command(
    run: Annotated[Path, typer.Argument(help="Run directory written by `osteon train`.")],
    format: Annotated[str, typer.Option("--format", help="Export format: onnx.")] = "onnx",
    quantize: Annotated[
        str | None, typer.Option(help="int8: static quantisation calibrated on the validation images.")
    ] = None,
    max_metric_drop: Annotated[
        float, typer.Option(help="int8 is kept only if the validation metric loses at most this much.")
    ] = 0.005,
    calibration_images: Annotated[int, typer.Option(help="Validation images used to calibrate int8.")] = 128,
    opset: Annotated[int, typer.Option(help="ONNX opset.")] = 17,
) -> None:
    """Export the best model to RUN/export/ (model.onnx + model.json) after a parity check against PyTorch.

    The validation metric is measured with PyTorch, ONNX fp32 and (with --quantize int8) int8; the int8 model
    is kept only when its metric is within --max-metric-drop, else the command exits with status 1.
    """
    from osteon.engine.export_onnx import FORMATS, export_onnx
    from osteon.errors import ConfigError

    console = stderr_console()
    with handle_errors(), show_warnings():
        if format not in FORMATS:
            raise ConfigError(f"--format {format!r} is not available; use one of {', '.join(FORMATS)}.")
        report = export_onnx(
            run, quantize=quantize, opset=opset, max_metric_drop=max_metric_drop, calibration_images=calibration_images
        )
    info = report.info
    parity = info["parity"]
    console.print(
        f"parity: max |onnx - torch| = {parity['max_abs_diff']:.2e} on {parity['images']} image(s) "
        f"(tolerance atol {parity['atol']}, rtol {parity['rtol']})"
    )
    val = info["validation"]
    if "torch" in val:
        console.print(f"validation {val['metric']} (n={val['n']}): torch {val['torch']:.4f}, onnx {val['onnx']:.4f}")
    int8 = info.get("int8")
    if int8 is not None:
        verdict = "accepted" if int8["accepted"] else "REJECTED (not kept)"
        console.print(
            f"int8 {int8['metric']}: {int8['int8']:.4f} (change {int8['change']:+.4f}, allowed drop "
            f"{int8['max_metric_drop']}): {verdict}"
        )
    for path in report.files:
        console.print(f"wrote {path}")
    if report.int8_accepted is False:
        fail(
            f"int8 lost more than {int8['max_metric_drop']} {int8['metric']} on validation; only fp32 was kept.",
            code=1,
        )
