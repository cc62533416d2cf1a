"""``osteon data deidentify IN OUT``: DICOM PS3.15 basic profile, for sharing data or runs."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from osteon.cli._common import handle_errors, stderr_console

#: Files not written listed one per line; more are only counted.
SHOW_SKIPPED = 20


def deidentify_command(
    source: Annotated[Path, typer.Argument(help="DICOM file or folder (walked recursively).")],
    out: Annotated[Path, typer.Argument(help="Folder for the de-identified copies (same relative paths).")],
    retain_patient_characteristics: Annotated[
        bool, typer.Option(help="Keep age, sex, size and weight (PS3.15 Retain Patient Characteristics Option).")
    ] = False,
    allow_burned_in: Annotated[
        bool, typer.Option(help="Also write objects that declare BurnedInAnnotation YES (check their pixels!).")
    ] = False,
    overwrite: Annotated[bool, typer.Option(help="Replace files that exist in OUT.")] = False,
) -> None:
    """De-identify DICOM files with the DICOM PS3.15 Annex E basic profile (extra `deid`).

    UIDs are replaced consistently across the files, each patient gets one pseudonym (ANON0001 ...), private
    tags are removed. Files that are not DICOM are not copied. OUT/DEIDENTIFICATION.json records what was done.
    """
    from osteon.data.deidentify import deidentify_tree

    console = stderr_console()
    with handle_errors():
        report = deidentify_tree(
            source,
            out,
            retain_patient_characteristics=retain_patient_characteristics,
            allow_burned_in=allow_burned_in,
            overwrite=overwrite,
        )
    for item in report.skipped[:SHOW_SKIPPED]:
        console.print(f"[yellow]not written[/yellow] {escape(item['file'])}: {escape(item['reason'])}", highlight=False)
    if len(report.skipped) > SHOW_SKIPPED:
        console.print(f"... and {len(report.skipped) - SHOW_SKIPPED} more not written.")
    console.print(f"{report.summary()} → {out}", highlight=False)
    console.print(
        "The pixel data was not inspected: check images for burned-in names before sharing (PS3.15 E.1.1).",
        highlight=False,
    )
