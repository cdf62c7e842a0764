"""`tenure book import|export|schema`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from tenure.book import files
from tenure.book.schema import Book
from tenure.book.service import export_book, import_book
from tenure.cli.common import JsonOpt, db, err, print_json

app = typer.Typer(help="The book: one YAML or JSON file that describes the MSP and its clients.", no_args_is_help=True)


@app.command("import")
def import_(
    file: Annotated[Path, typer.Argument(help="The book, YAML or JSON.", show_default=False)],
    json_: JsonOpt = False,
) -> None:
    """Validate the whole book, then import it all or nothing, upserting by key."""
    summary = import_book(db(), files.load(file))
    if json_:
        print_json(summary.as_json())
        return
    created, updated = sum(summary.created.values()), sum(summary.updated.values())
    detail = ", ".join(f"{n} {kind}" for kind, n in sorted(summary.created.items()))
    err.print(
        f"imported {file}: {created} created{f' ({detail})' if detail else ''}, {updated} updated, "
        f"{sum(summary.unchanged.values())} unchanged"
    )


@app.command("export")
def export(
    file: Annotated[
        Path | None, typer.Argument(help="Where to write (JSON if it ends in .json); stdout without it.")
    ] = None,
    json_: JsonOpt = False,
) -> None:
    """Write the MSP as a book that imports back to the same data."""
    document = export_book(db())
    as_json = json_ or (file is not None and file.suffix.lower() == ".json")
    text = files.dumps(document, as_json)
    if file is None:
        typer.echo(text, nl=False)
    else:
        file.write_text(text, encoding="utf-8")
        err.print(f"wrote {file}")


@app.command("schema")
def schema() -> None:
    """Print the book's JSON Schema."""
    typer.echo(json.dumps(Book.model_json_schema(), indent=2))
