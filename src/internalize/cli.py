"""The ``internalize`` command line."""

from __future__ import annotations

from typing import Annotated

import typer

from internalize import __version__

app = typer.Typer(
    help="Value internalization: learning and generalizing from social reward (Rong & Kleiman-Weiner 2024).",
    no_args_is_help=True,
    add_completion=False,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"internalize {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    """Run the paper's experiments, your own, and look at the worlds."""
