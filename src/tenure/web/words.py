"""Words, not codes: how the pages show a vocabulary value (`call_before_service` -> "Call before service").

One table (WORDS) for the values whose words are not just the code spelled out; any other code is spelled
out (underscores to blanks, the first letter capital), so a value added to the vocabulary later still reads
as words. The Jinja filter `words` (web/common.py) is this function.
"""

import re
from typing import Any

from markupsafe import Markup, escape

WORDS: dict[str, str] = {
    # agreement kinds, client classes, how work is paid (DOMAIN.md)
    "call_before_service": "Call before service",
    "adhoc": "Ad hoc",
    "prepaid": "Prepaid",
    "former": "Former client",
    "lapsed": "Lapsed",
    "prospect": "Prospect",
    "agreement": "Under agreement",
    "retainer": "Retainer",
    "managed": "Managed",
    "monitoring": "Monitoring",
    # ledger entries and what pays for an hour
    "monitoring_block": "Monitoring from the block",
    "included": "Included in the agreement",
    "block": "From a prepaid block",
    "billed": "Billed",
    "purchase": "Block bought",
    "expiry": "Block expired",
    "deduction": "Time deducted",
    "refund": "Given back",
    "adjustment": "Adjustment",
    "bonus": "Bonus minutes",
    "deposit": "Deposit",
    "settlement": "Settled",
    "reversal": "Reversed (re-allocated)",
    "catch_up": "Catch-up for earlier days",
    "credit": "Credit",
    "overage": "Over the included hours",
    "hourly": "Hourly work",
    "forfeit": "Forfeited",
    "fee": "Monthly fee",
    "time_entry": "Time entry",
    # services
    "backup_monitoring": "Backup monitoring",
    "remote_support": "Remote support",
    "onsite": "On site",
    "malware_cleanup": "Malware clean-up",
    "network_security": "Network security",
    # states
    "awaiting_approval": "Awaiting approval",
    "waiting_on_client": "Waiting on the client",
    "in_progress": "In progress",
    "handed_over": "Handed over",
    "orphaned": "A former client's agent still reporting",
    "suppress": "Suppressed",
    "forward": "Forwarded",
    "quote": "Quote",
    "firing": "Firing",
    "resolved": "Resolved",
    "issued": "Issued",
    "draft": "Draft",
    "paid": "Paid",
    "void": "Void",
    # roles
    "readonly": "Read-only",
    "intake": "Intake (machines posting alerts)",
    # offboarding reasons and answers
    "client_cancelled": "The client cancelled",
    "msp_ended": "We ended it",
    "other_msp": "Another MSP",
    "own_it": "The client's own IT",
    "agent_deployment": "Agent deployment",
    "group_policy": "Group Policy (GPO)",
    "full": "Full (on site and remote)",
    "remote": "Remote only",
    "none": "No access",
    "close": "Close it",
    "keep": "Keep it (it moves on)",
    # offboarding steps: kinds
    "auto": "Automatic",
    # invoices: kinds and lines, and their mail
    "monthly": "Monthly",
    "prepayment": "Prepayment",
    "final": "Final",
    "block_purchase": "Block bought",
    "charge": "Charge",
    "invoice_reminder": "Invoice reminder",
    "invoice_pdf": "Invoice (PDF)",
    "statement_pdf": "Statement (PDF)",
    "low_balance": "Low balance",
    "retainer_zero": "Retainer used up",
    # alerts: what became of them
    "ticket": "Ticket",
    "quarantine": "Quarantined",
    # backup results
    "success": "Success",
    "warning": "Warning",
    "failure": "Failure",
    # agreements: what they cover (the rest spell out)
    "antivirus": "Antivirus",
    "backup": "Backup",
    "rmm": "RMM",
    "siem": "SIEM",
}


# the fields whose values are vocabulary, where the change log shows them (web/common.py `brief`)
VOCABULARY_FIELDS = frozenset({
    "kind", "status", "state", "class", "role", "roles", "covers", "excludes", "work_type", "decision", "reason",
    "access", "moving_to", "agent_deployment", "security_account", "unused_prepaid", "checks", "features",
    "account", "layer", "line_kind", "last_status", "outcome",
})  # fmt: skip

CODE = re.compile(r"(?<![\w./:@-])([a-z][a-z0-9]*(?:_[a-z0-9]+)+)(?![\w/@-])")


# amounts of money, where the change log shows them (web/common.py `brief`: with thousands separators)
MONEY_FIELDS = frozenset({
    "amount", "price", "total", "monthly_fee", "overage_rate", "hourly_rate", "unit_price", "cost", "balance",
    "labor_cost_per_hour", "target_effective_rate",
})  # fmt: skip


def spelled(text: Any) -> str:
    """A sentence made elsewhere (a search hit's `acme · waiting_on_client`) with its codes as words."""
    return CODE.sub(lambda m: words(m.group(1)).lower() if m.group(1) in WORDS else m.group(1), str(text or ""))


def codes(text: Any) -> Markup:
    """A hint's text with the codes a person types in it (`disk_space`, `sender_domain`) marked as code."""
    escaped = str(escape("" if text is None else text))
    return Markup(CODE.sub(r"<code>\1</code>", escaped))


def words(value: Any) -> str:
    """A code as words; None as a dash; a list of codes as words joined by commas."""
    if value is None or value == "":
        return "–"
    if isinstance(value, (list, tuple)):
        return ", ".join(words(v) for v in value)
    text = str(value)
    if text in WORDS:
        return WORDS[text]
    spelled = text.replace("_", " ").strip()
    return spelled[:1].upper() + spelled[1:] if spelled.islower() or "_" in text else spelled
