"""``osteon data ...``: summary, check, split, phantom."""

from __future__ import annotations

import typer

app = typer.Typer(help="Inspect, check and split datasets.", no_args_is_help=True)
