"""Pure parsers for what arrives: backup products' notification mails and reports.

No database, no I/O, no clock: values in, values out. Sizes use binary units (1 GB = 1024**3
bytes); a time is timezone-aware when the message states a zone or has a Date header, else None.
"""

from __future__ import annotations

from tenure.intake.parsers.backup_email import parse_backup_email
from tenure.intake.parsers.common import ParsedRun
from tenure.intake.parsers.csv_report import parse_csv_report

__all__ = ["ParsedRun", "parse_backup_email", "parse_csv_report"]
