"""Mail in, on the ticket: how long after the SMTP server answers 250 a client's reply is a note on its ticket
(issue 18: ≤ 1 s), with `tenure serve --smtp` over the generated MSP.

Registered into bench.run's table by bench/run.py's PLUGINS.

    python -c "import bench.run as b; b.main(['--only', 'mail_in_note', '--scale', 'small'])"
"""

from __future__ import annotations

import os
import smtplib
import statistics
import subprocess
import sys
import time
from email.message import EmailMessage
from typing import Any

from sqlalchemy import func, insert, select

import bench.run as run
from bench.generate import Scale
from bench.registry import bench
from tenure import clock
from tenure.clients.models import Client, Contact
from tenure.db.engine import Database
from tenure.desk import service as desk
from tenure.triage.models import Ticket, TicketNote

REPLIES = 40
LIMIT_SECONDS = 1.0
SENDER = "bench.reply@client.example"


def _tickets(db: Database, n: int) -> list[int]:
    """`n` tickets of the first client, waiting on it, and a contact of that client to reply from."""
    with db.unit_of_work() as s:
        client_id = s.scalar(select(Client.id).order_by(Client.id).limit(1))
        s.execute(insert(Contact), [{"client_id": client_id, "name": "Bench", "email": SENDER, "roles": ["primary"]}])
        made = []
        for i in range(n):
            ticket = desk.open_ticket_in(s, client_id, f"Bench question {i}", kind="request", now=clock.now())
            desk.change_status_in(s, ticket, "waiting_on_client")
            made.append(ticket.id)
        return made


def _notes(db: Database, ticket: int) -> int:
    with db.reader() as s:
        return int(s.scalar(select(func.count()).select_from(TicketNote).where(TicketNote.ticket_id == ticket)) or 0)


@bench
def mail_in_note(db: Database, scale: Scale) -> dict[str, Any]:
    """Replies over SMTP to `tenure serve --smtp`, one at a time: seconds from the 250 to the public note on
    the ticket (and the ticket out of `waiting_on_client`), seen by polling the database every 5 ms."""
    target = run._copy(db, "mail")
    tickets = _tickets(target, REPLIES)
    http, smtp = run.free_port(), run.free_port()
    env = {**os.environ, "TENURE_DATABASE_URL": target.url}
    serve = [sys.executable, "-m", "tenure", "serve", "--port", str(http), "--smtp", f"127.0.0.1:{smtp}"]
    server = subprocess.Popen(serve, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    seconds: list[float] = []
    refused = 0
    try:
        run.until_healthy(f"http://127.0.0.1:{http}/healthz")
        with smtplib.SMTP("127.0.0.1", smtp, timeout=30) as connection:
            for ticket in tickets:
                reply = EmailMessage()
                reply["From"], reply["To"] = SENDER, "support@msp.example"
                reply["Subject"] = f"Re: [#{ticket}] Bench question"
                reply.set_content("Here is the answer.\n\nOn Monday you wrote:\n> a question\n")
                for _ in range(120):
                    try:
                        connection.send_message(reply)  # returns once the server answered 250
                        break
                    except smtplib.SMTPDataError as exc:  # 451: not stored (the worker's start holds SQLite)
                        if exc.smtp_code != 451:
                            raise
                        refused += 1
                        time.sleep(0.5)
                answered = time.perf_counter()
                while _notes(target, ticket) == 0:
                    if time.perf_counter() - answered > 30:
                        raise AssertionError(f"no note on ticket #{ticket} 30 s after the 250")
                    time.sleep(0.005)
                seconds.append(time.perf_counter() - answered)
    finally:
        server.terminate()
        server.wait(timeout=20)
    with target.reader() as s:
        moved = s.scalar(
            select(func.count()).select_from(Ticket).where(Ticket.id.in_(tickets), Ticket.status == "in_progress")
        )
    seconds.sort()
    p95 = seconds[min(len(seconds) - 1, int(0.95 * len(seconds)))]
    return {
        "replies": len(seconds),
        "refused_451_then_retried": refused,
        "moved_to_in_progress": moved,
        "median_seconds": round(statistics.median(seconds), 3),
        "p95_seconds": round(p95, 3),
        "max_seconds": round(seconds[-1], 3),
        "limit_seconds": LIMIT_SECONDS,
        "ok": p95 <= LIMIT_SECONDS and moved == len(seconds),
    }
