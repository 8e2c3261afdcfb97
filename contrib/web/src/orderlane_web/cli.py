"""``orderlane web``: the command, found by ``orderlane`` through its ``orderlane.commands`` entry
point. It imports the server only when it runs, so other ``orderlane`` commands stay fast."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.text import Text

from orderlane.cli import DatabaseUrl, database, display_url, user_errors
from orderlane.cli.common import stdout_console

__all__ = ["web"]


def web(
    database_url: DatabaseUrl = None,
    host: Annotated[
        str,
        typer.Option("--host", help="Address to bind. Anything but loopback needs --token."),
    ] = "127.0.0.1",
    port: Annotated[
        int, typer.Option("--port", min=0, max=65535, help="Port to listen on.")
    ] = 8000,
    token: Annotated[
        str | None,
        typer.Option(
            "--token",
            envvar="ORDERLANE_WEB_TOKEN",
            show_envvar=True,
            help="Secret every request must carry (at least 16 characters).",
        ),
    ] = None,
) -> None:
    """Serve a read-only dashboard of the journal: orders, fills, positions, P&L, live.

    The JSON API is under /api, described by /openapi.json. Ctrl-C stops it.
    """
    from orderlane.journal.reader import JournalReader
    from orderlane_web.security import check_bind
    from orderlane_web.server import serve

    url = database(database_url)
    with user_errors():
        check_bind(host, token)
        reader = JournalReader(url).open()
    shown = f"[{host}]" if ":" in host else host
    console = stdout_console()
    console.print(Text(f"orderlane web: {display_url(url)} on http://{shown}:{port}/ (read-only)"))
    if token is not None:
        console.print(Text(f"Open http://{shown}:{port}/?token=<your token> once in a browser."))
    console.print(Text("Ctrl-C stops it.", style="dim"))
    try:
        serve(reader, host=host, port=port, token=token)
    except KeyboardInterrupt:  # uvicorn stops on Ctrl-C, then hands the signal back
        console.print(Text("Stopped serving.", style="dim"))
    finally:
        reader.close()
