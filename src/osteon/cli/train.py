"""``osteon train [CONFIG.yaml] --task ... --data ...``: options are generated from TrainConfig's fields.

Every field of :class:`~osteon.engine.config.TrainConfig` is a flag of the same name
(``image_size`` → ``--image-size``), so the YAML keys and the CLI flags cannot drift apart.
"""

from __future__ import annotations

import inspect
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, get_args, get_origin

import typer
from pydantic_core import PydanticUndefined
from rich.console import Console
from rich.markup import escape

from osteon.cli._common import handle_errors, show_warnings
from osteon.engine.config import TaskName, TrainConfig, is_ddp_child

if TYPE_CHECKING:
    from osteon.engine.rundir import RunDir

console = Console(stderr=True)


def _option_type(annotation: Any) -> Any:
    """The CLI type of a config field: Optional[X] → X, StrEnum → str, list[str] → list[str]."""
    args = [a for a in get_args(annotation) if a is not type(None)]
    if get_origin(annotation) is not None and args and get_origin(annotation) is not list:
        annotation = args[0]
    if annotation is TaskName:
        return str
    return annotation


def _enum_of(annotation: Any) -> type[Enum] | None:
    """The Enum behind a field's annotation (``TaskName``, ``TaskName | None``), else None."""
    for candidate in (annotation, *get_args(annotation)):
        if isinstance(candidate, type) and issubclass(candidate, Enum):
            return candidate
    return None


def _train_command(
    config: Path | None = None,
    resume: Path | None = None,
    folds: int | None = None,
    plan: Path | None = None,
    **options: Any,
) -> None:
    from osteon.engine import train

    if plan is not None:  # the recommendation of `osteon plan`, under the YAML config and the flags
        from osteon.engine.plan import plan_options, yaml_values

        with handle_errors():
            given = {**(yaml_values(config) if config is not None else {}), **_set(options)}
            options, config = plan_options(plan, task=given.get("task"), given=given), None
    if folds is not None:  # same as `osteon cv --folds K`
        from osteon.cli._cv_run import run_cv

        run_cv(config, folds=folds, holdout=0.0, ensemble=True, n_resamples=1000, **options)
        return
    with handle_errors(), show_warnings():
        if resume is not None:
            run = train(resume=resume, **{k: v for k, v in options.items() if v is not None})
        else:
            cfg = TrainConfig.from_sources(config, **options)
            run = train(cfg)
    if not is_ddp_child():  # every DDP rank runs this command; only rank 0 reports
        print_training_summary(run)
        typer.echo(str(run.path))


def print_training_summary(run: RunDir) -> None:
    """The end of ``osteon train`` on stderr: epochs, wall time, the best epoch and its score, the files written.

    Reads ``training.json`` (fields that are missing are left out) and names only files that exist.
    """
    console.print(training_summary(run), soft_wrap=True, highlight=False)
    for what, path in (
        ("model", run.model),
        ("validation predictions", run.predictions("val")),
        ("operating point", run.operating_point),
    ):
        if path.is_file():  # whole paths, never cut to the terminal's width: people copy them
            console.print(f"  {what:<24}{escape(str(path))}", soft_wrap=True, highlight=False)
    console.print(f"[green]run written to[/green] {escape(str(run.path))}", soft_wrap=True, highlight=False)


def training_summary(run: RunDir) -> str:
    """One line from ``training.json``, e.g. "Trained 5 epochs in 1 min 12 s; best epoch 3: validation AUC 0.933."
    ("kept the last epoch 5" when the run keeps its last epoch, ``select_epoch: last``).

    Epochs are counted from 1 as the progress bar counts them (``best_epoch`` is stored 0-based).
    """
    record = run.read_json(run.training)
    epochs, seconds = record.get("epochs_run"), record.get("duration_s")
    head = "Training finished"
    if isinstance(epochs, int | float) and epochs > 0:
        head = f"Trained {int(epochs)} epoch{'s' if int(epochs) != 1 else ''}"
    if isinstance(seconds, int | float):
        head += f" in {_duration(float(seconds))}"
    best = record.get("best_epoch")
    if not isinstance(best, int | float) or best < 0:
        return head + "."
    kept = "kept the last epoch" if record.get("select_epoch") == "last" else "best epoch"
    line = f"{head}; {kept} {int(best) + 1}"
    monitor = record.get("monitor") if isinstance(record.get("monitor"), dict) else {}
    score = record.get("best_score")
    if isinstance(score, int | float):
        name = monitor.get("name") or "score"
        better = {"max": "higher is better", "min": "lower is better"}.get(str(monitor.get("direction")), "")
        line += f": validation {escape(str(name))} {_number(float(score))}" + (f" ({better})" if better else "")
    return line + "."


def _number(value: float) -> str:
    """Three decimals (AUC 0.933, MAE 12.346), significant digits for very small or large values."""
    return f"{value:.3f}" if value == 0 or 0.001 <= abs(value) < 1e6 else f"{value:.3g}"


def _duration(seconds: float) -> str:
    """``12.4 s``, ``3 min 05 s``, ``1 h 02 min``."""
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {secs:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


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
        choices = _enum_of(field.annotation)
        if choices is not None:  # e.g. every registered task, from TaskName (no torch import)
            help_text = "One of " + ", ".join(str(member.value) for member in choices) + "."
        # flags default to None (= "not given", so YAML values survive), so the config's default is written
        # into the help, escaped: Rich markup would take "[default: 224]" for a style tag and drop it
        help_markup = escape(help_text)
        default = _default_text(name, field)
        if default is not None:
            help_markup += f" [dim]{escape(f'[default: {default}]')}[/dim]"
        params.append(
            inspect.Parameter(
                name,
                inspect.Parameter.KEYWORD_ONLY,
                default=None,
                annotation=Annotated[kind | None, typer.Option(help=help_markup.strip(), show_default=False)],
            )
        )
    return inspect.Signature(params)


def _default_text(name: str, field: Any) -> str | None:
    """What ``--help`` shows as the default: the config's default, as the flag spells it; None for none."""
    default = field.default
    if default is PydanticUndefined or default is None or field.default_factory is not None:
        return None
    if isinstance(default, bool):
        return name.replace("_", "-") if default else "no-" + name.replace("_", "-")
    return str(default.value if isinstance(default, Enum) else default)


def train_command(**kwargs: Any) -> None:
    """Train a model; writes a run directory (config, checkpoints, model.pt, validation predictions)."""
    _train_command(**kwargs)


def _set(options: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in options.items() if v is not None}


def _train_signature() -> inspect.Signature:
    """The config flags plus ``--folds`` (cross-validation) and ``--plan`` (a plan.yaml of ``osteon plan``)."""
    params = list(_build_signature().parameters.values())
    extra = [
        inspect.Parameter(
            "folds",
            inspect.Parameter.KEYWORD_ONLY,
            default=None,
            annotation=Annotated[
                int | None, typer.Option(help="Cross-validate on K patient-grouped folds instead (as `osteon cv`).")
            ],
        ),
        inspect.Parameter(
            "plan",
            inspect.Parameter.KEYWORD_ONLY,
            default=None,
            annotation=Annotated[
                Path | None,
                typer.Option(help="plan.yaml from `osteon plan DATA`: its recommended settings, under the flags."),
            ],
        ),
    ]
    return inspect.Signature([*params[:2], *extra, *params[2:]])


train_command.__signature__ = _train_signature()  # type: ignore[attr-defined]
train_command.__annotations__ = {p.name: p.annotation for p in train_command.__signature__.parameters.values()}
