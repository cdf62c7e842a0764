"""Exact money: Decimal amounts, integer cents in storage, half-up rounding to the cent."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

CENT = Decimal("0.01")
ZERO = Decimal("0.00")


LIMIT = Decimal("1000000000000")  # a trillion


def to_money(value: Decimal | int | str) -> Decimal:
    """Parse a money value that must already be whole cents ("1200.00", 1200, Decimal)."""
    if isinstance(value, float):  # pragma: no cover - guarded for callers who slip
        raise TypeError("money must not be a float")
    try:
        amount = Decimal(str(value)) if not isinstance(value, Decimal) else value
    except InvalidOperation as exc:
        raise ValueError(f"'{value}' is not an amount of money") from exc
    if not amount.is_finite():
        raise ValueError(f"'{value}' is not an amount of money")
    if abs(amount) >= LIMIT:  # cents are stored as 64-bit integers; no invoice of an MSP comes near
        raise ValueError(f"'{value}' is too large an amount of money (the limit is {LIMIT:,})")
    if amount != amount.quantize(CENT):
        raise ValueError(f"'{value}' has fractions of a cent")
    return amount.quantize(CENT)


def round_cents(amount: Decimal) -> Decimal:
    """Half-up to the cent: the one rounding DOMAIN.md allows, applied once per figure."""
    return amount.quantize(CENT, rounding=ROUND_HALF_UP)


def to_cents(amount: Decimal) -> int:
    return int(to_money(amount) * 100)


def from_cents(cents: int) -> Decimal:
    return (Decimal(cents) / 100).quantize(CENT)


def fmt(amount: Decimal) -> str:
    """Money as a decimal string, the JSON shape of INTERFACE.md ("1590.00")."""
    return str(amount.quantize(CENT))


def grouped(value: object, places: int = 2) -> str:
    """An amount as a person reads it, with thousands separators (`12,345.60`); blank for nothing, and a
    value that is not a number as it is. Every page and document that shows money shows it so."""
    if value is None or value == "":
        return ""
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        return str(value)
    return f"{number:,.{places}f}"
