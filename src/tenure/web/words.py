"""Words, not codes: how the pages show a vocabulary value (`call_before_service` -> "Call before service").

One table (WORDS) for the values whose words are not just the code spelled out; any other code is spelled
out (underscores to blanks, the first letter capital), so a value added to the vocabulary later still reads
as words. The Jinja filter `words` (web/common.py) is this function.
"""

from typing import Any

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
    "orphaned": "No client found",
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
    "other_msp": "Another MSP",
    "agent_deployment": "Agent deployment",
}


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
