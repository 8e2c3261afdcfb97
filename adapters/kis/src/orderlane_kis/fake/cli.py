"""``orderlane fake-kis serve``: the fake KIS venue as its own process.

Published under the entry-point group ``orderlane.commands``, so the ``orderlane`` command line
offers it when orderlane-kis is installed. It prints one JSON line saying where the venue listens
(REST, notice WebSocket, control API) and the credentials of its default app, then serves until
interrupted (Ctrl-C or SIGTERM).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import sys
from typing import Annotated

import typer

from orderlane_kis.fake.control import FakeKisVenue
from orderlane_kis.fake.venue import Mode

__all__ = ["app"]

app = typer.Typer(
    help="The fake KIS venue: KIS Open API on loopback for tests and demos.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,
)


@app.callback()
def _group() -> None:
    """The fake KIS venue (a group, so ``serve`` stays a subcommand)."""


@app.command()
def serve(
    mode: Annotated[str, typer.Option("--mode", help="paper or live.")] = "paper",
    port: Annotated[int, typer.Option("--port", help="REST port (0: any free port).")] = 0,
    ws_port: Annotated[
        int, typer.Option("--ws-port", help="Notice WebSocket port (0: any free port).")
    ] = 0,
    control_port: Annotated[
        int, typer.Option("--control-port", help="Control API port (0: any free port).")
    ] = 0,
    market_hours: Annotated[
        bool, typer.Option("--market-hours", help="Refuse orders outside 09:00-15:30 KST.")
    ] = False,
) -> None:
    """Serve a fake KIS venue on 127.0.0.1 until interrupted."""
    if mode not in ("paper", "live"):
        typer.echo(f"--mode must be paper or live, not {mode!r}", err=True)
        raise typer.Exit(2)
    try:
        asyncio.run(_serve(mode, port, ws_port, control_port, market_hours))  # type: ignore[arg-type]
    except OSError as error:
        typer.echo(f"the fake KIS venue cannot listen: {error}", err=True)
        raise typer.Exit(1) from None


async def _serve(
    mode: Mode,
    port: int,
    ws_port: int,
    control_port: int,
    hours: bool,
    stop: asyncio.Event | None = None,
) -> None:
    """Serve until ``stop`` is set (by default: until SIGINT or SIGTERM)."""
    venue = FakeKisVenue(mode, port=port, ws_port=ws_port, control_port=control_port)
    venue.set_market_hours(hours)
    if stop is None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for number in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError):  # pragma: no cover (Windows)
                loop.add_signal_handler(number, stop.set)
    async with venue:
        sys.stdout.write(json.dumps(venue.describe()) + "\n")
        sys.stdout.flush()
        await stop.wait()
