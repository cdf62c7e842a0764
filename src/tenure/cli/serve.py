"""`tenure serve` and `tenure worker`."""

from __future__ import annotations

import gc
import threading
from typing import Annotated, Any

import typer

from tenure.cli.common import JsonOpt, NowOpt, apply_now, db, err, print_json


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

    from tenure.api.starting import Starting

    # Starting up makes hundreds of thousands of objects that all live as long as the process (modules, ORM
    # mappers, routes, templates): the collector would walk them again and again for nothing. It resumes
    # once the application is built and those objects are frozen out of its reach.
    gc.disable()
    database = db()
    controller = None
    if smtp:
        from tenure.intake.smtp import start_smtp

        smtp_host, smtp_port = _host_port(smtp, "--smtp")
        controller = start_smtp(database, smtp_host, smtp_port)
        err.print(f"SMTP intake on {smtp_host}:{smtp_port}")
    stop = threading.Event()

    def build() -> Any:
        try:
            from tenure.api.app import create_app

            app = create_app(database)
            # Everything built so far (modules, the app, the ORM's and the templates' caches) lives as long as
            # the process: frozen, a full collection no longer walks it, which stopped every request for
            # ~100 ms and set the intake endpoints' p99 latency.
            gc.collect()
            gc.freeze()
            return app
        finally:
            gc.enable()

    def start_worker() -> None:  # once the application is built: its first round would slow the build
        from tenure.worker import run_forever  # not before listening: it brings every service along

        if worker:
            threading.Thread(target=run_forever, args=(database, stop), name="tenure-worker", daemon=True).start()

    # listening at once: /healthz answers and other requests wait while the application is built beside
    front = Starting(database)
    front.build_beside(build, then=start_worker)
    try:
        uvicorn.run(front, host=host, port=port, log_level="warning")
    finally:
        stop.set()
        if controller is not None:
            controller.stop()


def worker(
    once: Annotated[bool, typer.Option("--once", help="Do all work due now, then exit (cron, tests).")] = False,
    processes: Annotated[
        int,
        typer.Option(
            "--processes",
            min=1,
            help="Worker processes claiming intake batches side by side (PostgreSQL; about one per core).",
        ),
    ] = 1,
    now: NowOpt = None,
    json_: JsonOpt = False,
) -> None:
    """The worker alone: intake processing, the missed-backup sweep, and what else is due."""
    from tenure.worker import run_forever, run_once, run_processes

    apply_now(now)
    if processes > 1:
        database = db()
        if database.is_sqlite:
            err.print("--processes above 1 needs PostgreSQL: SQLite has one writer at a time (use --processes 1)")
            raise typer.Exit(2)
        done = run_processes(database, processes, once, now)
        if once:
            if json_:
                print_json(done)
            else:
                err.print(", ".join(f"{k}: {v}" for k, v in done.items()))
        return
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
