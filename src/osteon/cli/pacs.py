"""``osteon pacs run RUN_OR_PIPELINE --url URL [--study UID | --since DATE | --watch]``: the DICOMweb bridge (extra
``pacs``). A pipeline YAML file (told apart from a run directory by its content) stores one SR per study with one
finding per pipeline finding (:mod:`osteon.serve.pacs.pipeline`)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated

import typer

from osteon.cli._common import handle_errors, show_warnings, stderr_console

app = typer.Typer(
    help="Bridge to a PACS over DICOMweb: predict studies, store SR/SEG/overlays back.", no_args_is_help=True
)


@app.command("run")
def run_command(
    run: Annotated[
        Path,
        typer.Argument(help="Run directory written by `osteon train`, or a pipeline YAML file (osteon pipeline)."),
    ],
    url: Annotated[str, typer.Option(help="DICOMweb root of the PACS.")] = "http://127.0.0.1:8042/dicom-web",
    study: Annotated[str | None, typer.Option(help="Process this Study Instance UID only.")] = None,
    since: Annotated[str | None, typer.Option(help="Process studies dated from this day (YYYY-MM-DD).")] = None,
    watch: Annotated[bool, typer.Option(help="Keep polling for new studies (Ctrl-C to stop).")] = False,
    interval: Annotated[float, typer.Option(help="--watch: seconds between polls.")] = 30.0,
    state: Annotated[
        Path | None,
        typer.Option(
            help="SQLite file of processed studies (default RUN/pacs/state.sqlite; for a pipeline, "
            "pacs/<name>.sqlite beside the file)."
        ),
    ] = None,
    max_attempts: Annotated[int, typer.Option(help="Failures after which a study is no longer retried.")] = 5,
    backend: Annotated[str, typer.Option(help="Predictor backend: torch, onnx or onnx-int8.")] = "torch",
) -> None:
    """Query studies, predict each image, store a Structured Report (+ SEG for masks, + an overlay) in the study.

    A study is processed once (the state file records it); a failing study is logged and retried on the next run
    or poll. Patient identifiers are never logged (studies are named by UID).
    """
    from osteon.errors import ConfigError

    console = stderr_console()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    for noisy in ("highdicom", "dicomweb_client"):  # one line per study from osteon.pacs is enough
        logging.getLogger(noisy).setLevel(logging.WARNING)
    with handle_errors(), show_warnings():
        if study and (since or watch):
            raise ConfigError("--study processes one study; it cannot be combined with --since or --watch.")
        from osteon.engine import Predictor
        from osteon.serve.pacs.bridge import PacsBridge, StudyResult, parse_since
        from osteon.serve.pacs.state import StudyState

        if since:
            parse_since(since)  # a bad date fails before the model loads
        from osteon.serve.pipeline_service import PipelineService, is_pipeline_file

        if is_pipeline_file(run):
            from osteon.serve.pacs.pipeline import PipelineBridge

            if backend != "torch":
                raise ConfigError(f"--backend {backend}: a pipeline runs its stages with torch. Fix: drop --backend.")
            default = Path(run).parent / "pacs" / f"{Path(run).stem}.sqlite"
            bridge: PacsBridge = PipelineBridge(
                PipelineService(run), url, StudyState(state or default, url), max_attempts=max_attempts
            )
        else:
            predictor = Predictor.from_run(run, backend=backend) if backend != "torch" else Predictor.from_run(run)
            bridge = PacsBridge(
                predictor, url, StudyState(state or Path(run) / "pacs" / "state.sqlite", url), max_attempts=max_attempts
            )

        def show(results: list[StudyResult]) -> None:
            for r in results:
                if r.status != "skipped":
                    detail = r.error or f"{r.images} images → " + ", ".join(
                        f"{len(v)} {k.upper()}" for k, v in r.stored.items() if k != "source"
                    )
                    console.print(f"{r.status:8s} {r.study_uid}  {detail}", highlight=False, soft_wrap=True)
            skipped = sum(r.status == "skipped" for r in results)
            failed = sum(r.status in ("failed", "gave_up") for r in results)
            processed = len(results) - skipped - failed
            console.print(f"{len(results)} studies: {processed} processed, {skipped} already done, {failed} failed")

        if watch:
            try:
                bridge.watch(since=since, interval=interval, on_pass=show)
            except KeyboardInterrupt:
                console.print("stopped")
            return
        results = bridge.run_once(study=study, since=since)
        show(results)
        if study and not results:
            raise ConfigError(f"study {study} was not found at {url}. Fix: check the UID and the URL.")
        if any(r.status in ("failed", "gave_up") for r in results):
            raise typer.Exit(1)
