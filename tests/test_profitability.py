"""The owner's view: revenue by service month, time, cost, margin and effective rate (DOMAIN.md).

Worked examples per kind, computed by hand, through the services on a real database; then properties of
the pure rules: revenue is fees + billed usage + prepaid value used, months add up to the window, money
is exact and rounded half-up once."""

from __future__ import annotations

import calendar
import copy
import csv
import json
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import insert, select

from tenure import clock
from tenure.agreements import rules as coverage
from tenure.billing import service as billing
from tenure.book.service import import_book
from tenure.clients.models import Client
from tenure.errors import TenureError
from tenure.intake.models import Alert
from tenure.money import round_cents
from tenure.reports import rules
from tenure.reports.service import explain as explain_month
from tenure.reports.service import profitability_report

MSP = {
    "name": "Example IT",
    "hourly_rate": "150.00",
    "payment_terms_days": 10,
    "time_rounding_minutes": 15,
    "block_bonus": [{"min_hours": 20, "bonus_hours": 2}],
    "low_balance_hours": 3,
    "unused_prepaid": "refund",
    "labor_cost_per_hour": "45.00",
    "target_effective_rate": "100.00",
}


def book(*clients, **msp):
    return {"version": 1, "msp": copy.deepcopy(MSP) | msp, "clients": list(clients)}


MANAGED = {
    "key": "acme",
    "name": "Acme Dental",
    "agreements": [
        {
            "key": "acme-m",
            "kind": "managed",
            "start": "2026-10-15",
            "monthly_fee": "1200.00",
            "included_hours": 10,
            "overage_rate": "120.00",
            "hourly_rate": "110.00",
            "covers": ["remote_support", "incident"],
            "excludes": ["malware_cleanup"],
        }
    ],
    "time_entries": [
        {"key": "t1", "date": "2026-10-20", "minutes": 420, "work_type": "remote_support"},
        {"key": "t2", "date": "2026-10-25", "minutes": 300, "work_type": "incident"},
        {"key": "t3", "date": "2026-10-28", "minutes": 61, "work_type": "malware_cleanup"},
    ],
}
MONITORED = {
    "key": "harbor",
    "name": "Harbor Law",
    "agreements": [
        {
            "key": "harbor-w",
            "kind": "monitoring",
            "start": "2026-09-01",
            "monthly_fee": "100.00",
            "block_hours_per_month": 2,
            "covers": ["monitoring", "patching"],
        }
    ],
    "blocks": [{"key": "harbor-b1", "purchased": "2026-09-01", "hours": 3, "price": "450.00"}],
    "time_entries": [{"key": "h1", "date": "2026-09-10", "minutes": 30, "work_type": "remote_support"}],
}
RETAINER = {
    "key": "cedar",
    "name": "Cedar Partners",
    "agreements": [{"key": "cedar-r", "kind": "retainer", "start": "2026-10-01", "hourly_rate": "100.00"}],
    "retainer_deposits": [{"date": "2026-10-01", "amount": "150.00"}],
    "time_entries": [
        {"key": "c1", "date": "2026-10-05", "minutes": 60, "work_type": "remote_support"},
        {"key": "c2", "date": "2026-10-06", "minutes": 60, "work_type": "onsite"},
    ],
}
BLOCK_ONLY = {
    "key": "willow",
    "name": "Willow Accounting",
    "blocks": [{"key": "willow-b1", "purchased": "2026-10-01", "hours": 20, "price": "2400.00"}],
    "time_entries": [
        {"key": "w1", "date": "2026-10-02", "minutes": 10, "work_type": "remote_support"},
        {"key": "w2", "date": "2026-10-03", "minutes": 15, "work_type": "incident"},
        {"key": "w3", "date": "2026-10-04", "minutes": 1, "work_type": "maintenance"},
    ],
}
ADHOC = {
    "key": "maple",
    "name": "Maple Street Bakery",
    "agreements": [{"key": "maple-a", "kind": "adhoc", "start": "2026-01-01", "hourly_rate": "130.00"}],
    "time_entries": [{"key": "m1", "date": "2026-10-07", "minutes": 50, "work_type": "remote_support"}],
}
NOTHING_SIGNED = {
    "key": "birch",
    "name": "Birch Residence",
    "time_entries": [{"key": "b1", "date": "2026-10-08", "minutes": 20, "work_type": "training"}],
}


def add_alert(db, client: str, decision: str, seen: str, service: str = "monitoring") -> int:
    moment = datetime.fromisoformat(seen).replace(tzinfo=UTC)
    with db.unit_of_work() as s:
        cid = s.scalars(select(Client.id).where(Client.key == client)).one()
        return s.execute(
            insert(Alert).returning(Alert.id),
            [
                {
                    "client_id": cid,
                    "source": "event",
                    "fingerprint": f"fp-{client}-{seen}-{decision}",
                    "service": service,
                    "title": f"Disk full on {client}",
                    "decision": decision,
                    "reason": "test",
                    "first_seen": moment,
                    "last_seen": moment,
                }
            ],
        ).scalar_one()


def clients_of(report):
    return {c["client"]: c for c in report["clients"]}


def months_of(client):
    return {m["month"]: m for m in client["months"]}


@pytest.fixture
def world(db):
    clock.set_now("2026-11-24T12:00:00Z")
    import_book(db, book(MANAGED, MONITORED, RETAINER, BLOCK_ONLY, ADHOC, NOTHING_SIGNED))
    return db


def test_managed_with_overage_by_hand(world):
    acme = clients_of(profitability_report(world, "2026-10", "2026-11"))["acme"]
    october, november = months_of(acme)["2026-10"], months_of(acme)["2026-11"]
    # signed on the 15th: 17 of 31 days of 1200 = 658.06; 12 hours covered against 10 included: 2 hours of
    # overage at 120 = 240; malware cleanup is excluded: 61 min → 75 min at the hourly 110 = 137.50
    assert (october["fees"], october["usage"], october["prepaid"]) == ("658.06", "377.50", "0.00")
    assert october["revenue"] == "1035.56"
    assert october["minutes"] == 795 and october["cost"] == "596.25"  # 13.25 hours × 45
    assert october["margin"] == "439.31"
    assert october["effective_rate"] == "78.16" and october["flagged"]  # 1035.56 ÷ 13.25
    assert (november["revenue"], november["minutes"], november["cost"]) == ("1200.00", 0, "0.00")
    assert november["effective_rate"] is None and not november["flagged"]  # no time, no rate
    assert (acme["revenue"], acme["minutes"], acme["cost"], acme["margin"]) == ("2235.56", 795, "596.25", "1639.31")
    assert acme["effective_rate"] == "168.72" and not acme["flagged"]
    # every minute and every cent here is the managed agreement's (included, overage, its own hourly rate)
    (agreement,) = acme["agreements"]
    assert (agreement["agreement"], agreement["kind"], agreement["revenue"], agreement["minutes"]) == (
        "acme-m",
        "managed",
        "2235.56",
        795,
    )


def test_monitoring_paid_from_a_block_then_by_the_fee(world):
    harbor = clients_of(profitability_report(world, "2026-09", "2026-10"))["harbor"]
    september, october = months_of(harbor)["2026-09"], months_of(harbor)["2026-10"]
    # the block: 3 hours for 450 = 150 an hour. September: 2 hours deducted instead of the fee = 300, and
    # 30 minutes of work from the block = 75. October: 30 minutes left < 2 hours, so the fee is charged.
    assert (september["fees"], september["prepaid"], september["revenue"]) == ("0.00", "375.00", "375.00")
    assert september["minutes"] == 30  # the monitoring deduction is not time
    assert (october["fees"], october["prepaid"], october["revenue"]) == ("100.00", "0.00", "100.00")
    agreements = {a["agreement"]: a for a in harbor["agreements"]}
    assert agreements["harbor-w"]["revenue"] == "400.00" and agreements["harbor-w"]["minutes"] == 0
    assert agreements[None]["revenue"] == "75.00" and agreements[None]["minutes"] == 30  # block work


def test_retainer_money_used_and_the_shortfall(world):
    cedar = clients_of(profitability_report(world, "2026-10", "2026-10"))["cedar"]
    (october,) = cedar["months"]
    # 150 held: the first hour (100) is paid from it, the second takes the last 50 and 50 is billed
    assert (october["prepaid"], october["usage"], october["revenue"]) == ("150.00", "50.00", "200.00")
    assert october["minutes"] == 120 and october["cost"] == "90.00"
    assert october["effective_rate"] == "100.00" and not october["flagged"]  # at the target is not below it


def test_block_only_is_rounded_once_per_month(world):
    willow = clients_of(profitability_report(world, "2026-10", "2026-10"))["willow"]
    (october,) = willow["months"]
    # 20 hours + 2 bonus for 2400: 109.0909…/hour. Three entries rounded up to 15 minutes each are worth
    # 27.2727… each: 81.8181… rounded once is 81.82 (entry by entry it would be 81.81)
    assert october["revenue"] == "81.82" and october["minutes"] == 45
    assert (october["cost"], october["margin"], october["effective_rate"]) == ("33.75", "48.07", "109.09")


def test_adhoc_with_unpaid_alerts_is_flagged(world):
    add_alert(world, "maple", "quote", "2026-10-12T09:00:00")
    add_alert(world, "maple", "suppress", "2026-10-13T09:00:00")  # suppressed: no one's time
    add_alert(world, "maple", "forward", "2026-11-02T09:00:00")  # another month
    report = profitability_report(world, "2026-10", "2026-10")
    maple = clients_of(report)["maple"]
    (october,) = maple["months"]
    # 50 minutes → 60 at the agreement's 130 = 130; time: 60 + one alert that reached a person (45)
    assert (october["revenue"], october["work_minutes"], october["unpaid_minutes"]) == ("130.00", 60, 45)
    assert (october["minutes"], october["cost"], october["margin"]) == (105, "78.75", "51.25")
    assert october["effective_rate"] == "74.29" and october["flagged"]
    assert "maple" in report["flagged"]
    agreements = {a["agreement"]: a for a in maple["agreements"]}
    assert agreements["maple-a"]["minutes"] == 60 and agreements[None]["minutes"] == 45
    # nothing signed: the MSP's own rate, 20 minutes → 30 at 150
    birch = clients_of(report)["birch"]
    assert birch["revenue"] == "75.00" and birch["agreements"][0]["agreement"] is None


def test_revenue_is_by_service_month_whatever_the_invoice_date(world):
    clock.set_now("2026-11-01T07:00:00Z")
    billing.run_billing(world, "2026-11")  # bills October's overage and November's fee on one invoice
    clock.set_now("2026-12-01T07:00:00Z")
    billing.run_billing(world, "2026-12")
    report = clients_of(profitability_report(world, "2026-10", "2026-11"))
    assert months_of(report["acme"])["2026-10"]["revenue"] == "1035.56"
    assert months_of(report["harbor"])["2026-10"]["revenue"] == "100.00"
    # the two invoices bill October to December (fees in advance): the same money in total
    invoices = billing.list_invoices(world, client="acme")
    through_december = clients_of(profitability_report(world, "2026-10", "2026-12"))["acme"]
    assert sum(Decimal(i["total"]) for i in invoices) == Decimal(through_december["revenue"]) == Decimal("3435.56")


def test_billed_through_days_are_still_revenue_of_their_month(db):
    clock.set_now("2026-11-24T12:00:00Z")
    moved_in = copy.deepcopy(MANAGED)
    moved_in["agreements"][0] |= {"start": "2026-01-01", "billed_through": "2026-10-31"}
    moved_in["time_entries"] = []
    import_book(db, book(moved_in))
    acme = clients_of(profitability_report(db, "2026-10", "2026-11"))["acme"]
    assert [m["revenue"] for m in acme["months"]] == ["1200.00", "1200.00"]


def test_one_client_only_and_errors(world):
    report = profitability_report(world, "2026-01", "2026-01", client="acme")
    assert [c["client"] for c in report["clients"]] == ["acme"]  # shown even without a figure
    assert report["clients"][0]["revenue"] == "0.00"
    with pytest.raises(TenureError, match="before it starts"):
        profitability_report(world, "2026-11", "2026-10")
    with pytest.raises(TenureError, match="YYYY-MM"):
        profitability_report(world, "2026-13", "2026-10")
    with pytest.raises(TenureError, match="nobody"):
        profitability_report(world, "2026-10", "2026-10", client="nobody")


def test_explain_points_every_figure_at_its_source(world):
    clock.set_now("2026-11-01T07:00:00Z")
    billing.run_billing(world, "2026-11")  # posts the ledger and bills the fees: sources to point at
    alert = add_alert(world, "harbor", "quote", "2026-10-03T10:00:00")
    add_alert(world, "harbor", "forward", "2026-10-04T10:00:00")  # the client's own contact got it: no tech time
    clock.set_now("2026-11-24T12:00:00Z")
    trail = explain_month(world, "harbor", "2026-09")
    assert trail["revenue"] == "375.00" and trail["exact_revenue"] == "375.00"
    (fee,) = trail["fees"]
    assert (fee["agreement"], fee["kind"], fee["amount"]) == ("harbor-w", "monitoring_block", "0.00")
    assert fee["agreement_id"] is not None
    (month,) = trail["monitoring"]
    (draw,) = month["draws"]
    assert (draw["block"], draw["minutes"], draw["price_per_hour"], draw["value"]) == (
        "harbor-b1",
        120,
        "150.00",
        "300.00",
    )
    assert draw["ledger_entries"]  # the monitoring deduction in the ledger
    (work,) = trail["work"]
    assert (work["time_entry"], work["layer"], work["minutes"], work["amount"]) == ("h1", "block", 30, "75.00")
    assert work["time_entry_id"] is not None and work["ledger_entries"]
    assert [d["ref"] for d in trail["block_draws"]] == ["harbor-w/2026-09", "h1"]

    october = explain_month(world, "harbor", "2026-10")
    assert [(f["kind"], f["amount"]) for f in october["fees"]] == [("fee", "100.00")]
    assert october["fees"][0]["invoices"]  # the November run billed October's fee as a catch-up line
    (a,) = october["alerts"]
    assert (a["alert"], a["decision"], a["minutes"]) == (alert, "quote", 45)
    assert october["unpaid_minutes"] == 45

    acme = explain_month(world, "acme", "2026-10")
    layers = [(w["time_entry"], w["layer"], w["minutes"], w["rate"], w["amount"]) for w in acme["work"]]
    assert layers == [
        ("t1", "included", 420, None, "0.00"),
        ("t2", "included", 180, None, "0.00"),
        ("t2", "billable", 120, "120.00", "240.00"),
        ("t3", "billable", 75, "110.00", "137.50"),
    ]
    assert acme["revenue"] == "1035.56"


# ------------------------------------------------------------------------------------------- the CLI


def test_cli_json_csv_table_and_explain(world, cli, tmp_path):
    out = json.loads(cli("report", "profitability", "--from", "2026-09", "--to", "2026-10", "--json").stdout)
    assert set(out) >= {"clients"}
    acme = clients_of(out)["acme"]
    assert set(acme) >= {"client", "revenue", "minutes", "cost", "margin", "effective_rate", "flagged", "months",
                         "agreements"}  # fmt: skip
    assert set(acme["months"][0]) >= {"month", "revenue", "minutes"}
    assert isinstance(acme["revenue"], str) and acme["revenue"] == "1035.56"

    path = tmp_path / "p.csv"
    cli("report", "profitability", "--from", "2026-09", "--to", "2026-10", "--csv", str(path))
    rows = list(csv.DictReader(path.open()))
    assert len(rows) == 2 * len(out["clients"])  # one row per client and month
    assert {(r["client"], r["month"]): r["revenue"] for r in rows}[("harbor", "2026-09")] == "375.00"

    table = cli("report", "profitability", "--from", "2026-10", "--to", "2026-10").stdout
    assert "acme" in table and "1035.56" in table
    one = cli("report", "profitability", "--from", "2026-10", "--client", "acme").stdout
    assert "acme by month" in one and "acme-m" in one

    trail = json.loads(
        cli("report", "profitability", "--explain", "--client", "acme", "--month", "2026-10", "--json").stdout
    )
    assert trail["revenue"] == "1035.56" and len(trail["work"]) == 4
    shown = cli("report", "profitability", "--explain", "--client", "acme", "--month", "2026-10").stdout
    assert "1035.56" in shown and "t3" in shown
    bad = cli("report", "profitability", "--explain", "--client", "acme", check=False)
    assert bad.returncode != 0 and "--month" in bad.stderr


# ---------------------------------------------------------------------------------------- properties

FIRST = date(2026, 1, 1)
WORK_TYPES = ("remote_support", "incident", "malware_cleanup", "monitoring", "onsite")
POLICY = coverage.Policy(rounding_minutes=15, hourly_rate=Decimal("150.00"), block_bonus=((20, 2),))
ECONOMICS = rules.Economics(Decimal("45.00"), Decimal("100.00"), 45)
money = st.integers(min_value=1, max_value=200_000).map(lambda cents: Decimal(cents) / 100)
day = st.integers(min_value=0, max_value=180).map(lambda n: FIRST + timedelta(days=n))


@st.composite
def worlds(draw):
    kinds = draw(st.lists(st.sampled_from(["managed", "monitoring", "retainer", "adhoc"]), max_size=2, unique=True))
    terms = []
    for kind in kinds:
        start = draw(day)
        length = draw(st.none() | st.integers(min_value=0, max_value=200))
        end = None if length is None else start + timedelta(days=length)
        terms.append(
            coverage.Terms(
                key=f"a-{kind}",
                kind=kind,
                start=start,
                end=end,
                monthly_fee=draw(money) if kind in ("managed", "monitoring") else None,
                included_minutes=draw(st.sampled_from([0, 60, 600])) if kind == "managed" else None,
                overage_rate=draw(money) if kind == "managed" else None,
                hourly_rate=draw(st.none() | money) if kind != "retainer" else draw(money),
                block_minutes_per_month=120 if kind == "monitoring" else None,
                covers=frozenset(["remote_support", "incident", "monitoring"]),
                excludes=frozenset(["malware_cleanup"]),
            )
        )
    blocks = []
    for i in range(draw(st.integers(min_value=0, max_value=2))):
        purchased, minutes, bonus = draw(day), draw(st.sampled_from([60, 180, 1200])), draw(st.sampled_from([0, 120]))
        expires = draw(st.none() | day)
        if expires is None or expires >= purchased:
            blocks.append(coverage.PrepaidBlock(f"b{i}", purchased, minutes, bonus, draw(money), expires))
    deposits = [coverage.Deposit(f"d{i}", draw(day), draw(money)) for i in range(draw(st.integers(0, 2)))]
    works = []
    for i in range(draw(st.integers(min_value=0, max_value=25))):
        minutes = draw(st.integers(min_value=1, max_value=300))
        works.append(coverage.Work(f"w{i:03d}", draw(day), minutes, draw(st.sampled_from(WORK_TYPES))))
    alerts = draw(st.dictionaries(st.sampled_from([f"2026-{m:02d}" for m in range(1, 7)]), st.integers(0, 3)))
    return terms, blocks, deposits, works, alerts


def _fee_by_hand(t: coverage.Terms, first: date, allocation) -> Decimal:
    """The fee of an agreement for one month's service days, computed directly from DOMAIN.md."""
    if not t.monthly_fee:
        return Decimal("0.00")
    month = f"{first:%Y-%m}"
    if any(m.agreement_key == t.key and m.month == month and m.paid_from_block for m in allocation.monitoring):
        return Decimal("0.00")
    days_in = calendar.monthrange(first.year, first.month)[1]
    last = first.replace(day=days_in)
    start, end = max(first, t.start), min(last, t.end or last)
    days = (end - start).days + 1
    if days <= 0:
        return Decimal("0.00")
    return t.monthly_fee if days == days_in else round_cents(t.monthly_fee * days / days_in)


@settings(max_examples=60)
@given(worlds())
def test_revenue_is_fees_plus_billed_usage_plus_prepaid_used_and_months_add_up(world):
    terms, blocks, deposits, works, alerts = world
    win = rules.window(date(2026, 1, 1), date(2026, 6, 1))
    allocation = coverage.allocate(works, terms, blocks, deposits, POLICY, through=win.last)
    result = rules.profitability("c", terms, blocks, allocation, win, alerts, ECONOMICS)
    by_key = {b.key: b for b in blocks}
    for first, month in zip(win.months, result.months, strict=True):
        label = f"{first:%Y-%m}"
        fees = sum((_fee_by_hand(t, first, allocation) for t in terms), Decimal(0))
        mine = [p for p in allocation.portions if f"{p.date:%Y-%m}" == label]
        billed = sum((p.amount for p in mine if p.layer == "billable"), Decimal(0))
        prepaid = sum((by_key[p.block_key].price * p.minutes / by_key[p.block_key].total_minutes
                       for p in mine if p.layer == "block"), Decimal(0))  # fmt: skip
        prepaid += sum((p.amount for p in mine if p.layer == "retainer"), Decimal(0))
        prepaid += sum((by_key[k].value_of(m) for mm in allocation.monitoring if mm.month == label
                        for k, m in mm.draws), Decimal(0))  # fmt: skip
        assert (month.fees, month.usage) == (fees, billed)
        # prepaid value is a sum of fractions (price × minutes / block minutes) kept unrounded until the month's
        # revenue is rounded once: summed in another order, the 28th significant digit may differ
        assert abs(month.prepaid - prepaid) < Decimal("1e-20")
        assert month.figures.revenue == round_cents(fees + billed + prepaid)
        assert month.figures.revenue.as_tuple().exponent == -2  # whole cents, rounded once
        assert month.work_minutes == sum(p.minutes for p in mine)
        assert month.figures.minutes == month.work_minutes + 45 * alerts.get(label, 0)
        assert month.figures.cost == round_cents(Decimal("45.00") * month.figures.minutes / 60)
        # the same month asked alone gives the same figures
        alone = rules.profitability("c", terms, blocks, allocation, rules.window(first, first), alerts, ECONOMICS)
        assert alone.months[0] == month
    total = result.figures
    assert total.revenue == sum(m.figures.revenue for m in result.months)
    assert total.minutes == sum(m.figures.minutes for m in result.months)
    assert total.cost == sum(m.figures.cost for m in result.months)
    assert total.margin == total.revenue - total.cost
    if total.minutes:
        assert total.effective_rate == round_cents(total.revenue * 60 / total.minutes)
        assert total.flagged == (total.effective_rate < Decimal("100.00"))
    else:
        assert total.effective_rate is None and not total.flagged
    # per agreement: each of its months rounded once, every minute of work counted once
    assert sum(a.figures.minutes for a in result.agreements) == total.minutes
    for a in result.agreements:
        assert a.figures.revenue == sum(m.revenue for m in a.months)


@settings(max_examples=40)
@given(st.lists(st.integers(min_value=1, max_value=120), min_size=1, max_size=12), money)
def test_rounded_half_up_once_per_month_not_per_entry(minutes, price):
    block = coverage.PrepaidBlock("b", FIRST, 1200, 0, price)
    works = [coverage.Work(f"w{i}", FIRST + timedelta(days=i), m, "remote_support") for i, m in enumerate(minutes)]
    win = rules.window(FIRST, FIRST)
    allocation = coverage.allocate(works, [], [block], [], POLICY, through=win.last)
    (month,) = rules.profitability("c", [], [block], allocation, win, {}, ECONOMICS).months
    used = sum(p.minutes for p in allocation.portions if p.layer == "block")
    assert month.figures.revenue == round_cents(price * used / 1200)
