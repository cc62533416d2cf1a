"""The REST API and web page (extra ``serve``: FastAPI, uvicorn, python-multipart).

Endpoints: ``POST /v1/predict`` (one DICOM, PNG or JPEG upload → the task's prediction as JSON, optional CAM),
``GET /v1/model`` (the model card), ``GET /v1/health``, ``GET /openapi.json`` (+ ``/docs``), and the page at ``/``
(static files shipped in the package; nothing is loaded from the internet).

Security: every ``/v1`` endpoint except ``health`` needs ``Authorization: Bearer <token>`` when a token is set
(the CLI requires one when bound to a non-loopback address). Uploads must declare their length and stay under
``max_upload_bytes``; the file type is sniffed from the bytes (never the name or the declared type); the
decoded size is capped by ``max_pixels`` before decoding; the upload is written to a private temporary file
with a random name and removed after the request. Logs carry a request id, the sniffed format, byte and pixel
counts, the outcome and the latency: never a file name or a DICOM header. Every error is JSON
(``{"error": ..., "request_id": ...}``), never a traceback.
"""

# No `from __future__ import annotations`: FastAPI reads the endpoints' annotations at run time, and their
# types (UploadFile, Request) are imported inside create_app so that the module imports without the extra.
import hmac
import logging
import os
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from osteon.errors import ConfigError, ImageReadError, ImageTooLargeError, OsteonError, UnsupportedFormatError

log = logging.getLogger("osteon.serve")

#: Formats accepted by ``/v1/predict`` (sniffed from the content).
ACCEPTED = ("dicom", "png", "jpeg")
SUFFIX = {"dicom": ".dcm", "png": ".png", "jpeg": ".jpg"}
EXTRA_HINT = "pip install 'osteon[serve]'"


@dataclass(frozen=True)
class ServeSettings:
    """Limits and access control of one server.

    Attributes:
        token: Bearer token required on ``/v1`` endpoints (``None``: no token, loopback only).
        max_upload_bytes: Largest accepted request body.
        max_pixels: Largest decoded image (rows × columns × frames × channels), checked before decoding.
        max_concurrent: Predictions run at once (further requests wait): bounds memory.
    """

    token: str | None = None
    max_upload_bytes: int = 64 * 2**20
    max_pixels: int = 50_000_000
    max_concurrent: int = 2


class ApiError(Exception):
    """An error answered as JSON with ``status``."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def create_app(service: Any, settings: ServeSettings | None = None) -> Any:
    """The FastAPI application around a :class:`~osteon.serve.service.ModelService` (or any object with
    ``predict(path)``, ``explain(path)``, ``card()`` and ``operating_point``), or a
    :class:`~osteon.serve.pipeline_service.PipelineService` (``kind == "pipeline"``: ``predict_pipeline(path)``
    answers the pipeline result JSON under ``"pipeline"``)."""
    try:
        from fastapi import FastAPI, File, Query, Request, UploadFile
        from fastapi.exceptions import RequestValidationError
        from fastapi.responses import FileResponse, JSONResponse
        from fastapi.staticfiles import StaticFiles
        from starlette.exceptions import HTTPException as StarletteHTTPException
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ConfigError(f"The server needs FastAPI (extra `serve`). Fix: {EXTRA_HINT}.") from exc
    from osteon.serve.results import display_json, heatmap_json, prediction_json

    settings = settings or ServeSettings()
    gate = threading.BoundedSemaphore(max(1, settings.max_concurrent))
    static = Path(str(resources.files("osteon.serve") / "static"))
    app = FastAPI(
        title="Osteon",
        version=_version(),
        description="Predictions of one Osteon model on DICOM, PNG or JPEG radiographs.",
        docs_url="/docs",
        redoc_url=None,
    )

    def error(status: int, message: str, request_id: str) -> JSONResponse:
        return JSONResponse({"error": message, "request_id": request_id}, status_code=status)

    @app.middleware("http")
    async def guard(request: Request, call_next: Any) -> Any:
        request_id = uuid.uuid4().hex[:12]
        request.state.request_id = request_id
        path = request.url.path
        if path.startswith("/v1/") and path != "/v1/health" and settings.token is not None:
            given = request.headers.get("authorization", "")
            expected = f"Bearer {settings.token}"
            if not hmac.compare_digest(given.encode(), expected.encode()):
                return error(401, "missing or wrong bearer token (header 'Authorization: Bearer <token>')", request_id)
        if request.method == "POST":
            length = request.headers.get("content-length")
            if length is None:
                return error(411, "the request must declare its Content-Length", request_id)
            if not length.isdigit() or int(length) > settings.max_upload_bytes:
                return error(413, f"upload larger than the limit of {settings.max_upload_bytes:,} bytes", request_id)
        try:
            return await call_next(request)
        except Exception:  # anything unexpected: logged here, answered without a traceback
            log.exception("request %s failed", request_id)
            return error(500, "internal error", request_id)

    @app.exception_handler(ApiError)
    async def api_error(request: Request, exc: ApiError) -> JSONResponse:
        return error(exc.status, exc.message, _rid(request))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return error(exc.status_code, str(exc.detail), _rid(request))

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = "; ".join(f"{'.'.join(map(str, e.get('loc', ())))}: {e.get('msg')}" for e in exc.errors())
        return error(422, f"invalid request: {problems}", _rid(request))

    @app.get("/v1/health", summary="Liveness")
    def health() -> dict[str, Any]:
        return {"status": "ok", "version": _version()}

    @app.get("/v1/model", summary="Model card: task, classes, metrics, version")
    def model_card() -> dict[str, Any]:
        return service.card()

    @app.post("/v1/predict", summary="Predict one DICOM, PNG or JPEG image")
    def predict(
        request: Request,
        file: UploadFile = File(..., description="The image (DICOM, PNG or JPEG; the type is read from the bytes)."),
        cam: bool = Query(False, description="Add a class-activation map (Grad-CAM) of the prediction."),
        display: bool = Query(True, description="Add the image itself for display (uint16 samples + window)."),
    ) -> dict[str, Any]:
        request_id = _rid(request)
        start = time.perf_counter()
        with tempfile.TemporaryDirectory(prefix="osteon-serve-") as folder:
            raw = Path(folder) / "upload"
            size = _save_upload(file, raw, settings.max_upload_bytes)
            kind = _sniff(raw)
            path = raw.rename(raw.with_suffix(SUFFIX[kind]))  # our name; readers never see the client's
            with gate:  # decoding, the model and the display image: at most max_concurrent at once
                image = _read(path, settings.max_pixels)
                height, width = _original_size(image)
                result: dict[str, Any] = {"request_id": request_id, "format": kind, "width": width, "height": height}
                if getattr(service, "kind", None) == "pipeline":  # findings of every stage (pipeline_service.py)
                    result["pipeline"] = _call(service.predict_pipeline, path)
                    result["summary"] = _pipeline_summary(result["pipeline"])
                else:
                    prediction = _call(service.predict, path)
                    result["prediction"] = prediction_json(prediction, operating_point=service.operating_point)
                    result["summary"] = prediction.summary()
                if cam:
                    result["cam"] = _cam(service, path, heatmap_json)
                if display:
                    window = None
                    if image.window_center is not None and image.window_width is not None:
                        window = (float(image.window_center), float(image.window_width))
                    result["display"] = display_json(image.array, window=window, original_hw=(height, width))
        log.info(
            "predict %s: %s, %d bytes, %d pixels, %.0f ms",
            request_id,
            kind,
            size,
            result["width"] * result["height"],
            (time.perf_counter() - start) * 1000,
        )
        return result

    @app.get("/", include_in_schema=False)
    def page() -> FileResponse:
        return FileResponse(static / "index.html", media_type="text/html")

    app.mount("/static", StaticFiles(directory=static), name="static")
    return app


# -- helpers ----------------------------------------------------------------------------------------------------
def _rid(request: Any) -> str:
    return getattr(request.state, "request_id", "")


def _version() -> str:
    import osteon

    return osteon.__version__


def _save_upload(file: Any, target: Path, limit: int) -> int:
    """Copy the upload to ``target`` in 1 MiB pieces; stop with 413 past ``limit``; return its size."""
    size = 0
    with open(target, "wb") as out:
        while chunk := file.file.read(2**20):
            size += len(chunk)
            if size > limit:
                raise ApiError(413, f"upload larger than the limit of {limit:,} bytes")
            out.write(chunk)
    if size == 0:
        raise ApiError(400, "the upload is empty")
    return size


def _sniff(path: Path) -> str:
    from osteon.io.formats import detect_format

    try:
        kind = str(detect_format(path))
    except UnsupportedFormatError:
        raise ApiError(
            415, f"not a DICOM, PNG or JPEG image (by its content); accepted: {', '.join(ACCEPTED)}"
        ) from None
    except OSError:
        raise ApiError(400, "the upload could not be read") from None
    if kind not in ACCEPTED:
        raise ApiError(415, f"{kind} uploads are not accepted here; send DICOM, PNG or JPEG")
    return kind


def _read(path: Path, max_pixels: int) -> Any:
    """Decode under the pixel limit (the declared size is checked before decoding), for the checks and the
    display: JPEGs may decode at 1/2 … 1/8 scale, down to a short side of :data:`DISPLAY_SIDE`."""
    from osteon.io import read_image
    from osteon.serve.results import DISPLAY_SIDE

    try:
        image = read_image(path, max_pixels=max_pixels, size_hint=DISPLAY_SIDE)
    except ImageTooLargeError as exc:
        raise ApiError(413, f"image too large: {exc.problem}") from None
    except ImageReadError as exc:
        raise ApiError(422, f"unreadable image: {exc.problem}") from None
    except (OSError, ValueError, MemoryError):
        raise ApiError(422, "unreadable image: the file is damaged or truncated") from None
    if image.is_volume:
        raise ApiError(422, f"a volume/multi-frame image {tuple(image.array.shape)}; send one 2D image")
    return image


def _original_size(image: Any) -> tuple[int, int]:
    """``(height, width)`` of the file's own pixel grid (a JPEG may have been decoded smaller)."""
    height, width = image.extra.get("original_size", image.array.shape[:2])
    return int(height), int(width)


def _call(fn: Any, *args: Any) -> Any:
    """Run a model call; Osteon's own errors become 422 with their message (file paths left out)."""
    try:
        return fn(*args)
    except ImageReadError as exc:
        raise ApiError(422, f"unreadable image: {exc.problem}") from None
    except OsteonError as exc:
        raise ApiError(422, str(exc).replace(os.fspath(args[0]) if args else "", "upload")) from None


def _pipeline_summary(document: dict[str, Any]) -> str:
    """``fracture 0.83 (positive), boxes 0.41`` from a pipeline result's first image."""
    images = document.get("images") or [{}]
    parts = []
    for finding in images[0].get("findings", []):
        p = finding.get("probability")
        shown = f"{p:.2f}" if isinstance(p, float) else (finding.get("grade") or finding.get("status"))
        parts.append(f"{finding['name']} {shown}" + (" (positive)" if finding.get("positive") is True else ""))
    return ", ".join(parts)


def _cam(service: Any, path: Path, heatmap_json: Any) -> dict[str, Any]:
    try:
        cam, target, score = service.explain(path)
    except ConfigError as exc:
        return {"error": str(exc)}
    return heatmap_json(cam, target=target, score=score)
