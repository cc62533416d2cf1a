"""``osteon data ...``: summary, check, split, phantom.

``summary``, ``check`` and ``split`` take the dataset adapter options (``--image-column``, ``--label-column``,
``--patient-column``, ``--image-template`` ... :data:`osteon.data.adapters.DATASET_OPTIONS`), the same flags
and names as ``osteon train`` and its YAML.
"""

from __future__ import annotations

import functools
import inspect
import json
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from osteon.cli._common import fail, handle_errors, show_warnings, stderr_console
from osteon.cli.deidentify import deidentify_command
from osteon.data.adapters._base import DATASET_OPTIONS

if TYPE_CHECKING:
    import pandas as pd

    from osteon.data.manifest import Manifest

app = typer.Typer(help="Inspect, check and split datasets.", no_args_is_help=True)
app.command("deidentify")(deidentify_command)

PathArg = Annotated[Path, typer.Argument(help="Dataset folder or file (any supported layout, or a manifest CSV).")]
FormatOpt = Annotated[
    str | None,
    typer.Option(
        "--format",
        "-f",
        help="Dataset format (manifest, fracatlas, coco, yolo, voc, class_folder, dicom_dir, csv); else detected.",
    ),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON to stdout instead of tables.")]
_SEVERITY_STYLE = {"error": "bold red", "warning": "yellow", "info": "cyan"}


def with_dataset_options(command: Callable[..., None]) -> Callable[..., None]:
    """Add one ``--image-column``-style flag per dataset adapter option; the command gets them as ``options``.

    The command declares a last parameter ``options: dict[str, str]``, which receives the options that were
    given (flags left out are not passed, so the adapter's defaults apply).
    """
    signature = inspect.signature(command, eval_str=True)
    kept = [p for p in signature.parameters.values() if p.name != "options"]
    added = [
        inspect.Parameter(
            name,
            inspect.Parameter.KEYWORD_ONLY,
            default=None,
            annotation=Annotated[
                str | None, typer.Option(f"--{name.replace('_', '-')}", help=text, show_default=False)
            ],
        )
        for name, text in DATASET_OPTIONS.items()
    ]

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> None:
        options = {name: value for name in DATASET_OPTIONS if (value := kwargs.pop(name, None)) is not None}
        command(*args, options=options, **kwargs)

    wrapper.__signature__ = signature.replace(parameters=[*kept, *added])  # type: ignore[attr-defined]
    wrapper.__annotations__ = {p.name: p.annotation for p in wrapper.__signature__.parameters.values()}  # type: ignore[attr-defined]
    return wrapper


def load_manifest(path: Path, *, format: str | None = None, options: dict[str, str] | None = None) -> Manifest:
    """``load_dataset`` with the adapter options, showing the adapter's warnings as yellow lines."""
    from osteon.data.adapters import load_dataset

    with show_warnings():
        return load_dataset(path, format=format, **(options or {}))


@app.command()
@with_dataset_options
def summary(
    path: PathArg, format: FormatOpt = None, json_out: JsonOpt = False, options: dict[str, str] | None = None
) -> None:
    """Count images, patients, labels per split, annotations, covariate coverage and file formats."""
    from osteon.data.summary import print_summary, summarize

    with handle_errors():
        result = summarize(load_manifest(path, format=format, options=options))
    if json_out:
        typer.echo(json.dumps(result, indent=2))
    else:
        print_summary(result, Console())


@app.command()
@with_dataset_options
def check(
    path: PathArg,
    format: FormatOpt = None,
    json_out: JsonOpt = False,
    near_duplicates: Annotated[
        bool, typer.Option("--near-duplicates", help="Also find look-alike images (perceptual hash; decodes all).")
    ] = False,
    no_decode: Annotated[
        bool, typer.Option("--no-decode", help="Skip decoding (faster; truncated/corrupt files go unnoticed).")
    ] = False,
    options: dict[str, str] | None = None,
) -> None:
    """Find unreadable files, duplicates, leakage between splits, label conflicts and bad annotations.

    Exit status: 0 when nothing is an error, 1 when something is (2: the dataset could not be loaded).
    """
    from osteon.data.checks import check_dataset, has_errors

    with handle_errors():
        manifest = load_manifest(path, format=format, options=options)
        findings = check_dataset(manifest, near_duplicates=near_duplicates, decode=not no_decode, progress=not json_out)
    counts = {s: sum(f.severity == s for f in findings) for s in ("error", "warning", "info")}
    if json_out:
        payload = {
            "dataset": manifest.name,
            "images": len(manifest),
            **counts,
            "findings": [f.to_dict() for f in findings],
        }
        typer.echo(json.dumps(payload, indent=2))
    else:
        console = Console()
        if findings:
            table = Table(title=f"{manifest.name}: {len(manifest)} images checked", show_lines=True)
            table.add_column("severity", no_wrap=True)
            table.add_column("code", no_wrap=True)
            for column in ("files", "problem", "fix"):
                table.add_column(column, overflow="fold")
            for f in findings:
                files = "\n".join(f.files[:3]) + (f"\n(+{len(f.files) - 3} more)" if len(f.files) > 3 else "")
                style = _SEVERITY_STYLE[f.severity]
                table.add_row(
                    f"[{style}]{f.severity}[/{style}]", f.code, escape(files), escape(f.message), escape(f.fix)
                )
            console.print(table)
        console.print(f"{counts['error']} error(s), {counts['warning']} warning(s), {counts['info']} note(s).")
    if has_errors(findings):
        raise typer.Exit(1)


@app.command()
@with_dataset_options
def split(
    path: PathArg,
    out: Annotated[Path, typer.Option("--out", "-o", help="Splits CSV to write (columns image, split[, fold]).")],
    format: FormatOpt = None,
    val: Annotated[float, typer.Option(help="Validation fraction (ignored with --folds).")] = 0.15,
    test: Annotated[float, typer.Option(help="Test fraction.")] = 0.15,
    stratify: Annotated[
        str | None, typer.Option(help="Column to stratify by; 'none' for none. Default: 'label' when present.")
    ] = None,
    seed: Annotated[int, typer.Option(help="Random seed (same seed, same splits).")] = 0,
    folds: Annotated[
        int | None,
        typer.Option(help="K-fold cross-validation over the non-test part: 'fold' 0..K-1, split 'train'/'test'."),
    ] = None,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace an existing --out file.")] = False,
    options: dict[str, str] | None = None,
) -> None:
    """Make patient-level, duplicate-aware, stratified train/val/test splits (or K folds) and save them.

    Rows that share a patient id or a byte-identical file always land in the same split.
    """
    import pandas as pd

    from osteon.data.splits import group_ids, kfold_splits, make_splits, save_split_file

    if out.exists() and not overwrite:
        fail(f"{out} exists; pass --overwrite to replace it, or choose another --out.")
    with handle_errors(), show_warnings():
        manifest = load_manifest(path, format=format, options=options)
        if stratify is None:
            stratify = "label" if manifest.has("label") else None
        elif stratify.lower() == "none":
            stratify = None
        groups = group_ids(manifest, progress=True)
        fold_values = None
        if folds is None:
            splits = make_splits(manifest, val=val, test=test, stratify=stratify, seed=seed, groups=groups)
        else:
            splits = make_splits(manifest, val=0.0, test=test, stratify=stratify, seed=seed, groups=groups)
            rest = (splits != "test").to_numpy()
            fold_values = pd.Series(pd.NA, index=manifest.frame.index, dtype="Int64")
            fold_values[rest] = kfold_splits(
                manifest.subset(rest), k=folds, stratify=stratify, seed=seed, groups=groups[rest]
            ).to_numpy()
        save_split_file(manifest, splits, out, folds=fold_values, overwrite=overwrite)
    _print_split_table(manifest, splits, stratify, fold_values)
    stderr_console().print(f"Wrote {out} ({len(manifest)} images, {groups.nunique()} patient/duplicate groups).")


@app.command()
def phantom(
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder to write images, masks and manifest.csv into.")],
    images: Annotated[int, typer.Option(help="Number of images (two knees per patient).")] = 120,
    size: Annotated[int, typer.Option(help="Image size in pixels (square).")] = 128,
    seed: Annotated[int, typer.Option(help="Random seed (same seed, same files).")] = 0,
    task: Annotated[str, typer.Option(help="What 'label' holds: fracture or kl_grade.")] = "fracture",
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace an existing manifest.csv.")] = False,
    landmarks: Annotated[
        bool, typer.Option("--landmarks", help="Spine phantoms with endplate landmarks and Cobb angles instead.")
    ] = False,
) -> None:
    """Write a synthetic knee-radiograph dataset (fractures, KL grades, joint-space width, masks, boxes)."""
    from osteon.data.phantom import make_phantom_dataset
    from osteon.data.phantom_landmarks import make_landmark_dataset

    with handle_errors():
        if landmarks:
            manifest = make_landmark_dataset(out, images=images, size=size, seed=seed, overwrite=overwrite)
        else:
            manifest = make_phantom_dataset(out, images=images, size=size, seed=seed, task=task, overwrite=overwrite)
    counts = manifest.frame["split"].value_counts().to_dict() if manifest.has("split") else {}
    shown = ", ".join(f"{k} {v}" for k, v in sorted(counts.items()))
    stderr_console().print(f"Wrote {len(manifest)} phantom images to {out} (manifest.csv; {shown}).")


def _print_split_table(manifest: Manifest, splits: pd.Series, stratify: str | None, folds: pd.Series | None) -> None:
    import pandas as pd

    frame = manifest.frame
    by = frame[stratify].astype("string").fillna("(missing)") if stratify else pd.Series("all", index=frame.index)
    column = pd.Series(splits.astype(str).to_numpy(), index=frame.index)
    if folds is not None:
        column = column.where(column == "test", "fold " + pd.Series(folds, index=frame.index).astype(str))
    table = pd.crosstab(by, column)
    out = Table(title=f"Images per split{f' and {stratify}' if stratify else ''}")
    out.add_column(stratify or "")
    for name in table.columns:
        out.add_column(str(name), justify="right")
    for label, row in table.iterrows():
        out.add_row(escape(str(label)), *(str(int(v)) for v in row))
    Console().print(out)
