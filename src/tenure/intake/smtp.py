"""The SMTP intake listener (`tenure serve --smtp HOST:PORT`): a message is stored before the 250, and
processed right after it, in a thread of its own (a client's reply is a note on its ticket within a second,
whatever the worker is busy with; if that fails, the worker's next round takes the message)."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

from tenure.db.engine import Database
from tenure.intake import service

log = logging.getLogger("tenure.intake.smtp")


class IntakeHandler:
    def __init__(self, db: Database):
        self.db = db

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        body = envelope.original_content or (envelope.content if isinstance(envelope.content, bytes) else b"")
        meta: dict[str, Any] = {
            "mail_from": envelope.mail_from,
            "rcpt_tos": list(envelope.rcpt_tos),
            "peer": str(session.peer[0]) if session.peer else None,
        }
        # the envelope's recipients (alerts+<client>@…) matter for matching even when To: says otherwise
        if envelope.rcpt_tos:
            body = b"".join(f"X-Original-To: {r}\r\n".encode() for r in envelope.rcpt_tos) + body
        try:
            payload = service.receive(self.db, "email", body, "message/rfc822", meta)
        except Exception:  # not stored: the sender must keep the message and try again later
            return "451 4.3.0 could not store the message, try again later"
        # after the answer: the 250 never waits for processing
        asyncio.get_running_loop().call_soon(self._process_soon, payload)
        return "250 OK stored"

    def _process_soon(self, payload: int) -> None:
        asyncio.get_running_loop().run_in_executor(None, self._process, payload)

    def _process(self, payload: int) -> None:
        try:
            service.process(self.db, [payload])
        except Exception:  # stored all the same: the worker's next round processes it
            log.warning("SMTP intake: payload %s waits for the worker", payload, exc_info=True)


def start_smtp(db: Database, host: str, port: int) -> Controller:
    controller = Controller(IntakeHandler(db), hostname=host, port=port, data_size_limit=25 * 1024 * 1024)
    controller.start()
    return controller
