"""``osteon serve RUN_OR_PIPELINE [--host 127.0.0.1 --port 8000]``: the web page and REST API of one run, or of a
pipeline YAML file (told apart by content; extra ``serve``)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from osteon.cli._common import handle_errors, stderr_console

LOOPBACK = {"127.0.0.1", "localhost", "::1"}


def serve_command(
    run: Annotated[
        Path,
        typer.Argument(help="Run directory written by `osteon train`, or a pipeline YAML file (osteon pipeline)."),
    ],
    host: Annotated[str, typer.Option(help="Address to bind; anything but loopback needs --token.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.")] = 8000,
    token: Annotated[
        str | None,
        typer.Option(help="Bearer token clients must send (default: $OSTEON_SERVE_TOKEN).", show_default=False),
    ] = None,
    backend: Annotated[str, typer.Option(help="torch, onnx or onnx-int8 (after `osteon export`).")] = "torch",
    max_upload_mb: Annotated[float, typer.Option(help="Largest upload in MiB.")] = 64.0,
    max_pixels: Annotated[int, typer.Option(help="Largest decoded image in pixels (checked before decoding).")] = (
        50_000_000
    ),
    max_concurrent: Annotated[int, typer.Option(help="Predictions run at once (bounds memory).")] = 2,
) -> None:
    """Serve the model: the page at http://HOST:PORT/, the API under /v1 (schema at /openapi.json, /docs)."""
    from osteon.errors import ConfigError

    console = stderr_console()
    with handle_errors():
        token = token or os.environ.get("OSTEON_SERVE_TOKEN") or None
        if host not in LOOPBACK and not token:
            raise ConfigError(
                f"--host {host} exposes the model beyond this machine; a bearer token is required there. "
                "Fix: pass --token (or set OSTEON_SERVE_TOKEN), or keep --host 127.0.0.1."
            )
        try:
            import uvicorn
        except ImportError as exc:
            raise ConfigError("The server needs uvicorn (extra `serve`). Fix: pip install 'osteon[serve]'.") from exc
        from osteon.serve import ServeSettings, create_app
        from osteon.serve.service import ModelService

        settings = ServeSettings(
            token=token,
            max_upload_bytes=int(max_upload_mb * 2**20),
            max_pixels=max_pixels,
            max_concurrent=max_concurrent,
        )
        from osteon.serve.pipeline_service import PipelineService, is_pipeline_file

        if is_pipeline_file(run):
            if backend != "torch":
                raise ConfigError(f"--backend {backend}: a pipeline runs its stages with torch. Fix: drop --backend.")
            service: object = PipelineService(run)
        else:
            service = ModelService(run, backend=backend)
        app = create_app(service, settings)
    import logging

    handler = logging.StreamHandler()  # the server's own lines (request id, format, sizes, latency; no identifiers)
    handler.setFormatter(logging.Formatter("%(levelname)s:     %(message)s"))
    logger = logging.getLogger("osteon.serve")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    console.print(f"Osteon serving {run} ({backend}) on http://{host}:{port}/  (API: /v1, schema: /docs)")
    uvicorn.run(app, host=host, port=port, log_level="info", server_header=False)
