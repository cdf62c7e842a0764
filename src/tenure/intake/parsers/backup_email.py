"""Which backup product sent this mail, and what did it report?

`parse_backup_email` tries each product's parser in turn (each checks its own sender, subject and
body signature) and returns the runs of the first that recognises the message; a CSV report (a
text/csv part or a *.csv attachment) is read last, as the generic fallback. None means nobody
recognised it: the caller quarantines the raw message, to replay once a parser is fixed.
"""

from __future__ import annotations

from collections.abc import Callable
from email.message import Message

from tenure.intake.parsers import (
    acronis,
    backup_exec,
    duplicati,
    macrium,
    synology,
    veeam,
    windows_backup,
)
from tenure.intake.parsers.common import MailView, ParsedRun, view_of
from tenure.intake.parsers.csv_report import parse_csv_report

# Most specific signatures first: Backup Exec and Duplicati mails are recognised by their own
# phrases before the looser Windows-script shapes are tried.
_PRODUCTS: tuple[Callable[[MailView], list[ParsedRun] | None], ...] = (
    veeam.parse,
    acronis.parse,
    synology.parse,
    macrium.parse,
    backup_exec.parse,
    duplicati.parse,
    windows_backup.parse,
)


def parse_backup_email(message: Message) -> list[ParsedRun] | None:
    """The runs a backup notification reports, or None when no parser recognises it.

    Never raises: a parser that trips on an odd message makes the message unrecognised (so it is
    quarantined and can be replayed), rather than half-read or guessed.
    """
    try:
        view = view_of(message)
        for parse in _PRODUCTS:
            runs = parse(view)
            if runs:
                return runs
        for text in view.csv_texts:
            runs = parse_csv_report(text, view.zone)
            if runs:
                return runs
    except Exception:
        return None
    return None
