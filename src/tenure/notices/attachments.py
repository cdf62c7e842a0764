"""Files a notice carries, made when it is sent from what the notice recorded in `data["attach"]`:
`{"kind": "invoice_pdf", "number": N}` (the invoice as issued: an issued invoice is never edited) or
`{"kind": "statement_pdf", "statement": {…}}` (the statement as it was when asked for). A retry makes the
same file again, so the attachment never has to be stored."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from tenure.db.engine import Database
from tenure.errors import TenureError
from tenure.notices.mailer import Attachment


def render(db: Database, specs: Iterable[dict[str, Any]]) -> tuple[Attachment, ...]:
    files = []
    for spec in specs:
        kind = spec.get("kind")
        # billing imports notices, not the other way round: its renderers are looked up when needed
        if kind == "invoice_pdf":
            from tenure.billing.mailing import invoice_file

            files.append(invoice_file(db, str(spec["number"])))
        elif kind == "statement_pdf":
            from tenure.billing.mailing import statement_file

            files.append(statement_file(db, dict(spec["statement"])))
        else:
            raise TenureError(f"no attachment of kind {kind!r}")
    return tuple(files)
