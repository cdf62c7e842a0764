"""The MSP's settings and its catalog of offers, changed in place in the book's shape (`msp:` of a book).

A change to the default rate or the rounding of time changes what work not yet invoiced costs, so every
client's work is allocated again (work already invoiced keeps what its invoice counted on).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from tenure.agreements.service import reallocate_all
from tenure.book import schema
from tenure.book.objects import sent_version, validated, version_of
from tenure.book.shapes import msp_values, msp_view
from tenure.db.engine import Database
from tenure.db.locks import hold
from tenure.errors import NotFound, Stale, ValidationFailed
from tenure.msp.models import MspSettings

# what the price of work not yet invoiced follows from
REALLOCATING = ("hourly_rate", "time_rounding_minutes")


def _row(s: Session) -> MspSettings:
    row = s.scalars(select(MspSettings).limit(1)).first()
    if row is None:
        raise NotFound("Tenure has no MSP settings yet: import a book or run `tenure demo`")
    return row


def _shape(row: MspSettings) -> dict[str, Any]:
    return dict(schema.Msp.model_validate(msp_view(row)).model_dump(mode="json", exclude_none=True))


def settings_json(row: MspSettings) -> dict[str, Any]:
    shape = {k: v for k, v in _shape(row).items() if k != "catalog"}
    return {**shape, "version": version_of(shape)}


def get_settings(db: Database) -> dict[str, Any]:
    with db.reader() as s:
        return settings_json(_row(s))


def _apply(s: Session, row: MspSettings, msp: schema.Msp) -> bool:
    """Write what differs; whether work must be allocated again."""
    moved = False
    for name, value in msp_values(msp).items():
        if getattr(row, name) != value:
            setattr(row, name, value)
            moved = moved or name in REALLOCATING
    s.flush()
    return moved


def _change(db: Database, update: Any) -> tuple[dict[str, Any], MspSettings]:
    """Run `update(current shape) -> new shape` under the settings' lock; allocate again if money moved."""
    with db.unit_of_work() as s:
        hold(s, "change:msp", 1, "the MSP's settings")
        row = _row(s)
        msp = validated(schema.Msp, update(_shape(row)))
        moved = _apply(s, row, msp)
        answer = settings_json(row)
    if moved:
        reallocate_all(db)
    return answer, row


def edit_settings(db: Database, body: Any, if_match: str | None = None) -> dict[str, Any]:
    """Change only the settings sent (the catalog changes offer by offer)."""
    if not isinstance(body, dict):
        raise ValidationFailed(["(body): an object of fields is expected"])
    body = dict(body)
    if_match = sent_version(body, if_match)
    if "catalog" in body:
        raise ValidationFailed(["catalog: change offers one by one (/api/v1/catalog, `tenure` book import)"])

    def update(current: dict[str, Any]) -> dict[str, Any]:
        shown = {k: v for k, v in current.items() if k != "catalog"}
        if if_match is not None and if_match != version_of(shown):
            raise Stale("the MSP's settings changed since they were read: read them again and reapply the change")
        return {k: v for k, v in {**current, **body}.items() if v is not None}

    return _change(db, update)[0]


# ---------------------------------------------------------------------------------------------- catalog


def _offer_json(offer: dict[str, Any]) -> dict[str, Any]:
    return {**offer, "version": version_of(offer)}


def list_offers(db: Database) -> list[dict[str, Any]]:
    with db.reader() as s:
        return [_offer_json(o) for o in _shape(_row(s)).get("catalog", [])]


def get_offer(db: Database, key: str) -> dict[str, Any]:
    found = [o for o in list_offers(db) if o["key"] == key]
    if not found:
        raise NotFound(f"no offer {key!r} in the catalog")
    return found[0]


def _offers(current: dict[str, Any]) -> list[dict[str, Any]]:
    return list(current.get("catalog", []))


def add_offer(db: Database, body: Any) -> dict[str, Any]:
    offer = validated(schema.CatalogOffer, body)
    item = offer.model_dump(mode="json", exclude_none=True, exclude_defaults=True)

    def update(current: dict[str, Any]) -> dict[str, Any]:
        offers = _offers(current)
        if any(o["key"] == offer.key for o in offers):
            raise ValidationFailed([f"key: the catalog has an offer {offer.key!r} already"])
        return {**current, "catalog": [*offers, item]}

    _change(db, update)
    return get_offer(db, offer.key)


def edit_offer(db: Database, key: str, body: Any, if_match: str | None = None) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise ValidationFailed(["(body): an object of fields is expected"])
    body = dict(body)
    if_match = sent_version(body, if_match)
    if body.get("key", key) != key:
        raise ValidationFailed(["key: an offer's key cannot be changed (reports name it)"])

    def update(current: dict[str, Any]) -> dict[str, Any]:
        offers = _offers(current)
        at = next((i for i, o in enumerate(offers) if o["key"] == key), None)
        if at is None:
            raise NotFound(f"no offer {key!r} in the catalog")
        if if_match is not None and if_match != version_of(offers[at]):
            raise Stale(f"offer {key!r} changed since it was read: read it again and reapply the change")
        merged = {k: v for k, v in {**offers[at], **body}.items() if v is not None}
        offer = validated(schema.CatalogOffer, merged)
        offers[at] = offer.model_dump(mode="json", exclude_none=True, exclude_defaults=True)
        return {**current, "catalog": offers}

    _change(db, update)
    return get_offer(db, key)


def remove_offer(db: Database, key: str) -> dict[str, Any]:
    """An offer is only a proposal replayed by `report fit`: nothing was billed from it, so it is deleted."""

    def update(current: dict[str, Any]) -> dict[str, Any]:
        offers = _offers(current)
        if not any(o["key"] == key for o in offers):
            raise NotFound(f"no offer {key!r} in the catalog")
        return {**current, "catalog": [o for o in offers if o["key"] != key]}

    _change(db, update)
    return {"offer": key, "outcome": "deleted"}
