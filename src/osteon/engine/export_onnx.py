"""``osteon export RUN --format onnx [--quantize int8]``: the run's model as ONNX, checked before it is kept.

Files (named by :class:`~osteon.engine.rundir.RunDir`): ``export/model.onnx`` (fp32), ``export/model.int8.onnx``
(only when accepted) and ``export/model.json``, which records everything a runtime needs besides the graph: the
preprocessing (size, letterbox, mean/std), the task state (classes, positive class, multilabel), the inputs and
outputs, and the checks below. The same record is embedded in the ``.onnx`` file's metadata (key ``osteon``).

Checks:

* **Parity.** ONNX Runtime's output on validation images (random inputs when the run has none) must match
  PyTorch's within ``|onnx - torch| <= atol + rtol * |torch|`` (default 1e-3 each), else the export fails.
* **Validation metric.** The task's monitor (AUC, QWK, MAE, Dice ...) on the validation split with PyTorch, ONNX
  fp32 and, with ``--quantize int8``, the int8 model. int8 is static quantisation (ONNX Runtime, QDQ, weights
  int8 per channel, activations uint8, MinMax calibration on the run's validation images) and is kept only when
  its metric is within ``max_metric_drop`` of PyTorch's (in the metric's own units, in its worse direction).

A model that is a tensor network followed by a decoding step (:class:`~osteon.models.decoded.DecodedModel`: the
default ``centernet`` detector) is exported as its network; parity is checked on the network's output and the
validation metric on the decoded boxes (the decoding runs in PyTorch after ONNX Runtime). Other models whose
output is not one tensor (torchvision's detectors return per-image box lists after non-maximum suppression) and
runs trained by another backend (Ultralytics) are refused with the reason.
"""

from __future__ import annotations

import json
import tempfile
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from osteon.data.datasets import DecodedImages, decode_images
from osteon.engine.rundir import RunDir
from osteon.errors import ConfigError
from osteon.models.decoded import Decoded, DecodedModel, NetworkOf

FORMATS = ("onnx",)
QUANTIZATIONS = ("int8",)
DEFAULT_OPSET = 17


@dataclass
class ExportReport:
    """What :func:`export_onnx` wrote and measured (also saved as ``export/model.json``)."""

    info: dict[str, Any]
    files: list[Path] = field(default_factory=list)

    @property
    def int8_accepted(self) -> bool | None:
        """``None`` without ``--quantize int8``; else whether the int8 model was kept."""
        int8 = self.info.get("int8")
        return None if int8 is None else bool(int8.get("accepted"))


def export_onnx(
    run_path: str | Path,
    *,
    quantize: str | None = None,
    opset: int = DEFAULT_OPSET,
    atol: float = 1e-3,
    rtol: float = 1e-3,
    max_metric_drop: float = 0.005,
    calibration_images: int = 128,
    batch_size: int = 16,
) -> ExportReport:
    """Export a finished run to ONNX, check parity and the validation metric, optionally quantise to int8.

    Args:
        run_path: The run directory.
        quantize: ``None`` or ``"int8"``.
        opset: ONNX opset.
        atol: Parity tolerance, absolute (on the model's raw outputs: logits).
        rtol: Parity tolerance, relative.
        max_metric_drop: Largest accepted loss of the validation metric for int8 (metric units).
        calibration_images: Validation images used to calibrate int8 activations.
        batch_size: Images per call when measuring the validation metric.

    Raises:
        ConfigError: the model cannot be exported, the extra is missing, parity fails, or int8 needs a
            validation split the run does not have.
    """
    from osteon.engine.onnx_session import EXTRA_HINT, OnnxModel, import_onnxruntime
    from osteon.engine.predictor import Predictor

    if quantize is not None and quantize not in QUANTIZATIONS:
        raise ConfigError(f"--quantize {quantize!r} is not available; use one of {', '.join(QUANTIZATIONS)}.")
    try:
        import onnx
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ConfigError(f"ONNX export needs the onnx package (extra `onnx`). Fix: {EXTRA_HINT}.") from exc
    ort = import_onnxruntime()
    predictor = Predictor.from_run(run_path)
    run: RunDir = predictor.run  # type: ignore[assignment]
    task, model, meta = predictor.task, predictor.model.eval(), predictor.meta
    if task.trainer_backend != "lightning":
        raise ConfigError(
            f"{run.path} was trained by the {task.trainer_backend!r} backend, whose models are not Osteon modules. "
            "Fix: use that library's own exporter (e.g. Ultralytics `yolo export format=onnx`), or predict with "
            "backend torch."
        )
    dataset = validation_dataset(predictor, run)
    example = _example_inputs(predictor, dataset)
    decoded = isinstance(model, DecodedModel)  # e.g. a detector: export the network, decode in PyTorch
    network = NetworkOf(model).eval() if decoded else model
    with torch.inference_mode():
        reference = network(*example)
    if not isinstance(reference, torch.Tensor):
        raise ConfigError(
            f"The model of {run.path} ({type(model).__name__}) returns {type(reference).__name__}, not one tensor: "
            "detectors return per-image box lists after non-maximum suppression, which ONNX export does not cover "
            "here. Fix: predict this run with backend torch."
        )
    run.export_dir.mkdir(parents=True, exist_ok=True)
    for stale in (run.onnx_int8_model, run.onnx_info):
        stale.unlink(missing_ok=True)
    exporter = _export_graph(network, example, run.onnx_model, opset=opset, image_only=len(example) == 1)
    onnx.checker.check_model(str(run.onnx_model))
    fp32 = OnnxModel(run.onnx_model)
    parity = check_parity(network, fp32, example, atol=atol, rtol=rtol)

    def full(session: torch.nn.Module) -> torch.nn.Module:  # an ONNX session with the model's decoding
        return Decoded(session, model) if decoded else session

    if not parity["passed"]:
        raise ConfigError(
            f"ONNX Runtime differs from PyTorch by up to {parity['max_abs_diff']:.3g} (tolerance atol={atol}, "
            f"rtol={rtol}) on {parity['images']} image(s); {run.onnx_model} is not reliable. Fix: try another "
            "--opset, or report the model architecture."
        )
    info: dict[str, Any] = {
        "format": "onnx",
        "opset": opset,
        "exporter": exporter,
        "file": run.onnx_model.name,
        "task": meta["task"],
        "preprocessing": meta["preprocessing"],
        "covariates": meta["covariates"],
        "inputs": _input_spec(predictor, len(example) == 2),
        "outputs": {"logits": {"shape": list(reference.shape[1:]), "dtype": "float32", "batch_axis": 0}},
        "postprocessing": (
            f"{type(model).__name__}.decode (scores, top-k cells, boxes, NMS) in PyTorch, then the task's own"
            if decoded
            else "the task's own (softmax/sigmoid/ordinal/regression scale, masks), as in osteon's Predictor"
        ),
        "source": {"model": run.model.name, "best_epoch": meta.get("best_epoch"), "monitor": meta.get("monitor")},
        "versions": {"torch": str(torch.__version__), "onnx": onnx.__version__, "onnxruntime": ort.__version__},
        "parity": parity,
    }
    validation: dict[str, Any] = {"metric": task.monitor.name, "direction": task.monitor.direction}
    if dataset is not None:
        validation.update(n=len(dataset), torch=validation_metric(task, model, dataset, batch_size=batch_size))
        validation["onnx"] = validation_metric(task, full(fp32), dataset, batch_size=batch_size)
    info["validation"] = validation
    files = [run.onnx_model]
    if quantize == "int8":
        if dataset is None:
            raise ConfigError(
                f"{run.path} has no labelled validation images to calibrate and check int8 with. "
                "Fix: export without --quantize, or train with a validation split."
            )
        info["int8"] = quantize_int8(
            run,
            task,
            dataset,
            calibration_images=calibration_images,
            batch_size=batch_size,
            reference=float(validation["torch"]),
            max_metric_drop=max_metric_drop,
            wrap=full,
        )
        if info["int8"]["accepted"]:
            files.append(run.onnx_int8_model)
    _embed_metadata(run.onnx_model, info)
    if run.onnx_int8_model.is_file():
        _embed_metadata(run.onnx_int8_model, {**info, "file": run.onnx_int8_model.name})
    run.write_json(run.onnx_info, info)
    files.append(run.onnx_info)
    return ExportReport(info, files)


# -- data ---------------------------------------------------------------------------------------------------------
def validation_dataset(predictor: Any, run: RunDir) -> Dataset | None:
    """The run's labelled, readable validation images as the task's dataset (``None`` when there are none)."""
    manifest = run.load_manifest()
    frame = manifest.frame
    if "split" not in frame:
        return None
    rows = np.flatnonzero((frame["split"] == "val").fillna(False).to_numpy(dtype=bool))  # unsplit rows: NA
    if len(rows):
        rows = rows[~predictor.task.missing_targets(manifest)[rows]]
    if not len(rows):
        return None
    decoded = decode_images(manifest.paths_of(rows), predictor.preprocessing, progress=False)
    ok = decoded.readable()
    if not len(ok):
        return None
    encoder = predictor.covariates
    covariates = encoder.transform(frame)[rows[ok]] if encoder.columns else None
    return predictor.task.make_dataset(
        manifest,
        rows[ok],
        DecodedImages(decoded.stack[ok], [decoded.geometry[i] for i in ok], {}),
        covariates=covariates,
        augment=None,
        prep=predictor.preprocessing,
    )


def _loader(task: Any, dataset: Dataset, batch_size: int) -> DataLoader:
    return DataLoader(dataset, batch_size=batch_size, shuffle=False, collate_fn=task.collate_fn)


def _example_inputs(predictor: Any, dataset: Dataset | None, n: int = 4) -> tuple[torch.Tensor, ...]:
    """Up to ``n`` validation images (random normal inputs without them), plus covariates when the model has them."""
    size = predictor.preprocessing.image_size
    dim = predictor.covariates.dim if predictor.covariates.columns else 0
    if dataset is not None:
        batch = next(iter(_loader(predictor.task, dataset, n)))
        images = batch["image"].float()
        covariates = batch.get("covariates") if dim else None
    else:
        generator = torch.Generator().manual_seed(0)
        images = torch.randn(n, predictor.preprocessing.channels, size, size, generator=generator)
        covariates = torch.zeros(n, dim) if dim else None
    return (images,) if covariates is None else (images, covariates.float())


def _input_spec(predictor: Any, with_covariates: bool) -> dict[str, Any]:
    prep = predictor.preprocessing
    spec: dict[str, Any] = {
        "image": {
            "shape": ["batch", prep.channels, prep.image_size, prep.image_size],
            "dtype": "float32",
            "meaning": (
                "grayscale in [0, 1] (DICOM window / bit depth applied), letterboxed to the square (aspect kept, "
                f"zero padding, centred), then (x - {prep.mean}) / {prep.std}"
            ),
        }
    }
    if with_covariates:
        spec["covariates"] = {
            "shape": ["batch", predictor.covariates.dim],
            "dtype": "float32",
            "meaning": "encoded by the run's CovariateEncoder (see 'covariates')",
        }
    return spec


# -- graph ----------------------------------------------------------------------------------------------------------
def _export_graph(
    model: torch.nn.Module, example: tuple[torch.Tensor, ...], path: Path, *, opset: int, image_only: bool
) -> str:
    """Write the ONNX graph with a dynamic batch (and dynamic height/width); return the exporter used.

    The TorchScript exporter is tried first: it handles every Osteon image model with dynamic axes and takes a
    third of the time of the ``torch.export`` (dynamo) exporter, which is the fallback.
    """
    names = ["image"] if image_only else ["image", "covariates"]
    axes: dict[str, dict[int, str]] = {"image": {0: "batch", 2: "height", 3: "width"}, "logits": {0: "batch"}}
    with torch.inference_mode():
        out = model(*example)
    if out.ndim == 4:
        axes["logits"] = {0: "batch", 2: "height", 3: "width"}
    if not image_only:
        axes["covariates"] = {0: "batch"}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            torch.onnx.export(
                model,
                example,
                str(path),
                input_names=names,
                output_names=["logits"],
                dynamic_axes=axes,
                opset_version=opset,
                dynamo=False,
            )
            return "torchscript"
        except Exception:  # fall back to the other exporter
            from torch.export import Dim

            shapes: list[dict[int, Any]] = [{0: Dim("batch"), 2: Dim("height"), 3: Dim("width")}]
            if not image_only:
                shapes.append({0: Dim("batch")})
            torch.onnx.export(
                model,
                example,
                str(path),
                input_names=names,
                output_names=["logits"],
                dynamic_shapes=tuple(shapes),
                opset_version=max(opset, 18),
                dynamo=True,
                external_data=False,
            )
            return "dynamo"


def check_parity(
    model: torch.nn.Module, onnx_model: torch.nn.Module, example: tuple[torch.Tensor, ...], *, atol: float, rtol: float
) -> dict[str, Any]:
    """Compare PyTorch and ONNX Runtime outputs on ``example``: ``|onnx - torch| <= atol + rtol * |torch|``."""
    with torch.inference_mode():
        expected = model(*example).float().numpy()
        got = onnx_model(*example).float().numpy()
    diff = np.abs(got - expected)
    return {
        "images": int(example[0].shape[0]),
        "max_abs_diff": float(diff.max()) if diff.size else 0.0,
        "atol": atol,
        "rtol": rtol,
        "passed": bool(got.shape == expected.shape and np.all(diff <= atol + rtol * np.abs(expected))),
    }


def validation_metric(task: Any, model: torch.nn.Module, dataset: Dataset, *, batch_size: int = 16) -> float:
    """The task's monitor (natural units: AUC, QWK, MAE, Dice ...) of ``model`` on ``dataset``."""
    records: list[Any] = []
    with torch.inference_mode():
        for batch in _loader(task, dataset, batch_size):
            records.extend(task.validation_records(model, batch))
    return float(task.monitor.natural(task.monitor_records(records)))


# -- int8 -----------------------------------------------------------------------------------------------------------
def quantize_int8(
    run: RunDir,
    task: Any,
    dataset: Dataset,
    *,
    calibration_images: int,
    batch_size: int,
    reference: float,
    max_metric_drop: float,
    wrap: Any = None,
) -> dict[str, Any]:
    """Static int8 quantisation calibrated on validation images; kept only if the metric holds (see module doc)."""
    from onnxruntime.quantization import (
        CalibrationDataReader,
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )
    from onnxruntime.quantization.shape_inference import quant_pre_process

    from osteon.engine.onnx_session import OnnxModel

    batches: list[dict[str, np.ndarray]] = []
    taken = 0
    for batch in _loader(task, dataset, 8):
        if taken >= calibration_images:
            break
        feed = {"image": batch["image"].float().numpy()}
        if "covariates" in batch:
            feed["covariates"] = batch["covariates"].float().numpy()
        batches.append(feed)
        taken += len(feed["image"])

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self.items = iter(batches)

        def get_next(self) -> dict[str, np.ndarray] | None:
            return next(self.items, None)

    with tempfile.TemporaryDirectory() as tmp:
        prepared = Path(tmp) / "prepared.onnx"
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            quant_pre_process(str(run.onnx_model), str(prepared), skip_symbolic_shape=True)
            quantize_static(
                str(prepared),
                str(run.onnx_int8_model),
                Reader(),
                quant_format=QuantFormat.QDQ,
                per_channel=True,
                weight_type=QuantType.QInt8,
                activation_type=QuantType.QUInt8,
                calibrate_method=CalibrationMethod.MinMax,
            )
    session = OnnxModel(run.onnx_int8_model)
    metric = validation_metric(task, wrap(session) if wrap else session, dataset, batch_size=batch_size)
    change = metric - reference
    loss = -change if task.monitor.direction == "max" else change
    accepted = bool(np.isfinite(metric) and loss <= max_metric_drop)
    if not accepted:
        run.onnx_int8_model.unlink(missing_ok=True)
    return {
        "file": run.onnx_int8_model.name if accepted else None,
        "method": "static, QDQ, weights int8 per channel, activations uint8, MinMax calibration",
        "calibration_images": taken,
        "metric": task.monitor.name,
        "torch": reference,
        "int8": metric,
        "change": change,
        "max_metric_drop": max_metric_drop,
        "accepted": accepted,
    }


def _embed_metadata(path: Path, info: dict[str, Any]) -> None:
    """Store ``info`` as the model's ``osteon`` metadata (JSON), so the ``.onnx`` file describes itself."""
    import onnx

    from osteon.engine.rundir import _json_default, json_safe

    proto = onnx.load(str(path))
    del proto.metadata_props[:]
    onnx.helper.set_model_props(proto, {"osteon": json.dumps(json_safe(info), default=_json_default)})
    onnx.save(proto, str(path))
