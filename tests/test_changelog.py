"""Every create, update and delete of a business object is logged with who, when, before and after."""

from datetime import UTC, date, datetime
from decimal import Decimal

from sqlalchemy import select

from tenure import clock
from tenure.clients.models import Client, VendorAccount
from tenure.db.base import plain
from tenure.db.changelog import ObjectChange, record_created
from tenure.db.uow import as_actor


def test_create_update_delete_are_logged_with_actor_time_and_states(db):
    clock.set_now(datetime(2026, 11, 2, 9, 30, tzinfo=UTC))
    with as_actor("terry"), db.unit_of_work() as s:
        client = Client(key="zeta", name="Zeta Ltd")
        s.add(client)
    with as_actor("dana"), db.unit_of_work() as s:
        s.get(Client, client.id).name = "Zeta Limited"
    with as_actor("owner"), db.unit_of_work() as s:
        s.delete(s.get(Client, client.id))
    with db.reader() as s:
        rows = s.scalars(select(ObjectChange).order_by(ObjectChange.id)).all()
    assert [(r.action, r.actor, r.object_type, r.object_label) for r in rows] == [
        ("create", "terry", "client", "zeta"),
        ("update", "dana", "client", "zeta"),
        ("delete", "owner", "client", "zeta"),
    ]
    assert rows[0].before is None and rows[0].after["name"] == "Zeta Ltd"
    assert rows[1].before["name"] == "Zeta Ltd" and rows[1].after["name"] == "Zeta Limited"
    assert rows[2].before["name"] == "Zeta Limited" and rows[2].after is None
    assert rows[0].time == datetime(2026, 11, 2, 9, 30, tzinfo=UTC)


def test_a_rollback_leaves_no_log_and_secrets_are_redacted(db):
    with db.unit_of_work() as s:
        client = Client(key="k", name="K")
        s.add(client)
        s.flush()
        s.add(VendorAccount(client_id=client.id, key="k-rmm", kind="rmm", vendor="tacticalrmm", secret=b"sekrit"))
    try:
        with db.unit_of_work() as s:
            s.get(Client, client.id).name = "never"
            s.flush()
            raise RuntimeError("crash mid-change")
    except RuntimeError:
        pass
    with db.reader() as s:
        rows = s.scalars(select(ObjectChange)).all()
        assert [r.action for r in rows] == ["create", "create"]
        assert rows[1].after["secret"] == "<redacted>"
        assert "sekrit" not in str([r.after for r in rows])
        assert s.scalars(select(Client.name)).one() == "K"


def test_money_is_exact_through_storage(db):
    with db.unit_of_work() as s:
        client = Client(key="m", name="M")
        s.add(client)
        s.flush()
        from tenure.agreements.models import Agreement

        s.add(
            Agreement(
                client_id=client.id,
                key="m-a",
                kind="managed",
                start=datetime(2026, 1, 1).date(),
                monthly_fee=Decimal("1234.56"),
            )
        )
    with db.reader() as s:
        from tenure.agreements.models import Agreement

        fee = s.scalars(select(Agreement.monthly_fee)).one()
    assert fee == Decimal("1234.56") and isinstance(fee, Decimal)


def test_bulk_created_rows_log_their_state_as_a_flushed_object_would(db):
    """`record_created` (intake's tickets, a billing run's invoices) writes each state in one orjson call:
    money at two decimals, days and times as ISO text with their offsets, bytes named, what orjson refuses
    made plain value by value: the same log a flushed object leaves."""
    states = [
        {
            "total": Decimal("1234.5"),
            "due": date(2026, 12, 1),
            "opened_at": datetime(2026, 12, 3, 10, 0, 0, 123456, tzinfo=UTC),
            "seen": datetime(2026, 12, 3, 10, 0, 0),
            "body": b"\x00\x01",
            "note": "naïve café",
            "count": 3,
            "open": True,
            "nothing": None,
        },
        {"huge": 2**70, "total": Decimal("0.1")},  # beyond 64 bits: orjson refuses, the plain path writes it
    ]
    with db.unit_of_work() as s:
        record_created(
            s, "thing", [{"id": n, "label": f"t{n}", "client_id": None, "after": a} for n, a in enumerate(states)]
        )
    with db.reader() as s:
        logged = s.scalars(
            select(ObjectChange.after).where(ObjectChange.object_type == "thing").order_by(ObjectChange.object_id)
        ).all()
    assert logged == [{k: plain(v) for k, v in state.items()} for state in states]
    assert logged[0]["total"] == "1234.50" and logged[0]["opened_at"] == "2026-12-03T10:00:00.123456+00:00"
