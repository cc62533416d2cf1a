"""``osteon train [CONFIG.yaml] --task ... --data ...``: options are generated from TrainConfig's fields.

Every field of :class:`~osteon.engine.config.TrainConfig` is a flag of the same name
(``image_size`` → ``--image-size``), so the YAML keys and the CLI flags cannot drift apart.
"""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Annotated, Any, get_args, get_origin

import typer
from rich.console import Console

from osteon.cli._common import handle_errors
from osteon.engine.config import TaskName, TrainConfig, is_ddp_child

console = Console(stderr=True)


def _option_type(annotation: Any) -> Any:
    """The CLI type of a config field: Optional[X] → X, StrEnum → str, list[str] → list[str]."""
    args = [a for a in get_args(annotation) if a is not type(None)]
    if get_origin(annotation) is not None and args and get_origin(annotation) is not list:
        annotation = args[0]
    if annotation is TaskName:
        return str
    return annotation


def _train_command(config: Path | None = None, resume: Path | None = None, **options: Any) -> None:
    from osteon.engine import train

    with handle_errors():
        if resume is not None:
            run = train(resume=resume, **{k: v for k, v in options.items() if v is not None})
        else:
            cfg = TrainConfig.from_sources(config, **options)
            run = train(cfg)
        if not is_ddp_child():  # every DDP rank runs this command; only rank 0 reports
            console.print(f"[green]run written to[/green] {run.path}")
            typer.echo(str(run.path))


def _build_signature() -> inspect.Signature:
    params = [
        inspect.Parameter(
            "config",
            inspect.Parameter.POSITIONAL_OR_KEYWORD,
            default=None,
            annotation=Annotated[Path | None, typer.Argument(help="YAML config; flags override its values.")],
        ),
        inspect.Parameter(
            "resume",
            inspect.Parameter.KEYWORD_ONLY,
            default=None,
            annotation=Annotated[
                Path | None, typer.Option(help="Continue the run in this directory from its last checkpoint.")
            ],
        ),
    ]
    for name, field in TrainConfig.model_fields.items():
        kind = _option_type(field.annotation)
        help_text = field.description or ""
        if field.default is not None and not callable(field.default_factory):
            help_text += f" [default: {field.default}]"
        params.append(
            inspect.Parameter(
                name,
                inspect.Parameter.KEYWORD_ONLY,
                default=None,
                annotation=Annotated[kind | None, typer.Option(help=help_text.strip(), show_default=False)],
            )
        )
    return inspect.Signature(params)


def train_command(**kwargs: Any) -> None:
    """Train a model; writes a run directory (config, checkpoints, model.pt, validation predictions)."""
    _train_command(**kwargs)


train_command.__signature__ = _build_signature()  # type: ignore[attr-defined]
train_command.__annotations__ = {p.name: p.annotation for p in train_command.__signature__.parameters.values()}
