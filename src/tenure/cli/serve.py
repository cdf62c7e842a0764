"""`tenure serve` and `tenure worker`."""

from __future__ import annotations

import gc
import threading
from typing import Annotated

import typer

from tenure.cli.common import JsonOpt, NowOpt, apply_now, db, err, print_json
from tenure.worker import run_forever, run_once


def _host_port(value: str, option: str) -> tuple[str, int]:
    host, _, port = value.rpartition(":")
    if not host or not port.isdigit():
        raise typer.BadParameter(f"{value!r} is not HOST:PORT", param_hint=option)
    return host, int(port)


def serve(
    host: Annotated[str, typer.Option(help="Address for the web UI, REST API and intake endpoints.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port for HTTP.")] = 8000,
    smtp: Annotated[str | None, typer.Option(help="Also receive alert e-mail over SMTP on HOST:PORT.")] = None,
    worker: Annotated[bool, typer.Option(help="Run the worker in this process (the embedded default).")] = True,
) -> None:
    """Serve the REST API and intake endpoints (and the worker, and SMTP intake if asked)."""
    import uvicorn

    from tenure.api.app import create_app

    database = db()
    controller = None
    if smtp:
        from tenure.intake.smtp import start_smtp

        smtp_host, smtp_port = _host_port(smtp, "--smtp")
        controller = start_smtp(database, smtp_host, smtp_port)
        err.print(f"SMTP intake on {smtp_host}:{smtp_port}")
    stop = threading.Event()
    if worker:
        threading.Thread(target=run_forever, args=(database, stop), name="tenure-worker", daemon=True).start()
    app = create_app(database)
    # Everything built so far (modules, the app, the ORM's and the templates' caches) lives as long as the
    # process: frozen, a full collection no longer walks it, which stopped every request for ~100 ms and
    # set the intake endpoints' p99 latency.
    gc.collect()
    gc.freeze()
    try:
        uvicorn.run(app, host=host, port=port, log_level="warning")
    finally:
        stop.set()
        if controller is not None:
            controller.stop()


def worker(
    once: Annotated[bool, typer.Option("--once", help="Do all work due now, then exit (cron, tests).")] = False,
    now: NowOpt = None,
    json_: JsonOpt = False,
) -> None:
    """The worker alone: intake processing, the missed-backup sweep, and what else is due."""
    apply_now(now)
    if once:
        done = run_once(db())
        if json_:
            print_json(done)
        else:
            err.print(", ".join(f"{k}: {v}" for k, v in done.items()))
        return
    stop = threading.Event()
    try:
        run_forever(db(), stop)
    except KeyboardInterrupt:
        stop.set()
