"""``orderlane adapters``: the installed broker adapters and what they can do."""

from __future__ import annotations

from typing import Any

import typer
from rich.table import Table

from orderlane.cli.common import JsonFlag, adapter_info, stdout_console
from orderlane.plugins import installed_adapters
from orderlane.rendering import cell
from orderlane.serialization import to_json, unstructure

__all__ = ["register"]


def register(app: typer.Typer) -> None:
    app.command()(adapters)


def _adapter_rows() -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for name, entry in sorted(installed_adapters().items()):
        row: dict[str, Any] = {
            "name": name,
            "distribution": entry.distribution,
            "version": entry.version,
            "entry_point": entry.value,
            "capabilities": [],
            "timezone": None,
            "description": "",
            "error": None,
        }
        try:
            info = adapter_info(entry)
        except Exception as error:  # a broken adapter must not hide the others
            row["error"] = f"{type(error).__name__}: {error}"
        else:
            row["capabilities"] = unstructure(info.capabilities)
            row["timezone"] = info.timezone
            row["description"] = info.description
        rows.append(row)
    return rows


def adapters(json_output: JsonFlag = False) -> None:
    """List the installed broker adapters and what they can do."""
    rows = _adapter_rows()
    if json_output:
        typer.echo(to_json(rows, indent=2))
        return
    console = stdout_console()
    if not rows:
        console.print("No orderlane adapters are installed (try: pip install orderlane-mock).")
        return
    table = Table(title="Installed adapters", title_justify="left")
    table.add_column("Name", no_wrap=True)
    table.add_column("Distribution", no_wrap=True)
    table.add_column("Version", no_wrap=True)
    table.add_column("Capabilities")
    failed = any(row["error"] for row in rows)
    if failed:
        table.add_column("Factory error", style="red")
    for row in rows:
        cells = [
            cell(row["name"]),
            cell(row["distribution"] or "-"),
            cell(row["version"] or "-"),
            cell(", ".join(row["capabilities"]) or "-"),
        ]
        if failed:
            cells.append(cell(row["error"]))
        table.add_row(*cells)
    console.print(table)
