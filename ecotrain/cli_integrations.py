"""`ecotrain exporter`: the store's figures for Prometheus (the [prometheus] extra)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from ecotrain.cli import DbOpt, _settings, app
from ecotrain.errors import UserError

DEFAULT_PORT = 9836


@app.command()
def exporter(
    port: Annotated[
        int,
        typer.Option(
            metavar="PORT", min=0, max=65535, help="Port for /metrics (0: any free port)."
        ),
    ] = DEFAULT_PORT,
    host: Annotated[
        str, typer.Option(metavar="ADDR", help="Address to bind (default: this machine only).")
    ] = "127.0.0.1",
    textfile: Annotated[
        str | None,
        typer.Option(
            metavar="DIR",
            help="Write DIR/ecotrain.prom for node-exporter's textfile collector instead.",
        ),
    ] = None,
    every: Annotated[
        float, typer.Option(metavar="SECONDS", help="With --textfile: rewrite period.")
    ] = 30.0,
    once: Annotated[bool, typer.Option(help="With --textfile: write once and exit.")] = False,
    project: Annotated[str | None, typer.Option(metavar="NAME", help="Only this project.")] = None,
    db: DbOpt = None,
) -> None:
    """Serve the store's figures to Prometheus.

    Energy, CO2e, cost and power now, per project, user and GPU."""
    from ecotrain.extras import require

    require("prometheus", "ecotrain exporter")
    from ecotrain.integrations import prometheus
    from ecotrain.store.engine import mask_url, resolve_url

    url = resolve_url(_settings(**{"database.url": db})["database.url"])
    if textfile is not None:
        if every <= 0:
            raise UserError("--every must be > 0 seconds")
        where = Path(textfile) / prometheus.TEXTFILE_NAME
        print(f"ecotrain exporter: writing {where} every {every:g} s · {mask_url(url)}"
              if not once else f"ecotrain exporter: writing {where}", file=sys.stderr)  # fmt: skip
        try:
            prometheus.textfile_loop(url, Path(textfile), every, project, once=once)
        except KeyboardInterrupt:
            pass
        return
    try:
        server = prometheus.serve(url, host, port, project)
    except OSError as e:
        raise UserError(f"cannot listen on {host}:{port}: {e.strerror}") from None
    print(
        f"ecotrain exporter on http://{host}:{server.server_port}/metrics · {mask_url(url)}",
        file=sys.stderr,
        flush=True,
    )
    import threading

    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
