"""The fit replay: each catalog offer as the client's only arrangement, on its real work (DOMAIN.md "Fit"),
and the unpaid-work report's "agreement that would have covered it" from the same replay."""

from __future__ import annotations

import copy
import csv
import json
from dataclasses import replace
from datetime import date, timedelta
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from tenure import clock
from tenure.agreements import rules as coverage
from tenure.book.service import export_book, import_book
from tenure.db.base import Base
from tenure.money import round_cents
from tenure.reports import rules
from tenure.reports.service import fit_report, profitability_report
from tenure.triage.report import unpaid_report
from tests.test_profitability import add_alert

ESSENTIALS = {
    "key": "essentials",
    "kind": "managed",
    "monthly_fee": "300.00",
    "included_hours": 2,
    "overage_rate": "120.00",
    "hourly_rate": "120.00",
    "covers": ["incident", "remote_support", "maintenance", "monitoring"],
    "excludes": ["malware_cleanup"],
}
CATALOG = [
    ESSENTIALS,
    {"key": "watch", "kind": "monitoring", "monthly_fee": "100.00", "block_hours_per_month": 2,
     "covers": ["monitoring", "patching"]},
    {"key": "block-20", "block_hours": 20, "price": "2400.00"},
    {"key": "block-2", "block_hours": 2, "price": "250.00"},
    {"key": "retainer-100", "kind": "retainer", "hourly_rate": "100.00"},
]  # fmt: skip
MSP = {
    "name": "Example IT",
    "hourly_rate": "150.00",
    "time_rounding_minutes": 15,
    "block_bonus": [{"min_hours": 20, "bonus_hours": 2}],
    "labor_cost_per_hour": "45.00",
    "target_effective_rate": "100.00",
    "catalog": CATALOG,
}
ACME = {
    "key": "acme",
    "name": "Acme Dental",
    # its only arrangement is the catalog's `essentials`, signed long before the window
    "agreements": [ESSENTIALS | {"key": "acme-essentials", "start": "2026-01-01"}],
    "time_entries": [
        {"key": "t0", "date": "2026-08-15", "minutes": 600, "work_type": "remote_support"},  # before the window
        {"key": "t1", "date": "2026-09-03", "minutes": 150, "work_type": "remote_support"},
        {"key": "t2", "date": "2026-09-20", "minutes": 40, "work_type": "malware_cleanup"},
        {"key": "t3", "date": "2026-10-05", "minutes": 100, "work_type": "maintenance"},
    ],
}  # fmt: skip


def book(*clients, **msp):
    return {"version": 1, "msp": copy.deepcopy(MSP) | msp, "clients": [copy.deepcopy(c) for c in clients]}


def offers_of(report):
    return {o["offer"]: o for o in report["offers"]}


def test_each_offer_replayed_by_hand_and_the_actual_arrangement_equals_what_it_paid(db):
    clock.set_now("2026-11-24T12:00:00Z")
    import_book(db, book(ACME))
    report = fit_report(db, "acme", "2026-09", "2026-10")
    # actually paid: September 300 + 30 min overage at 120 (60) + malware 45 min at 120 (90) = 450;
    # October 300 (105 minutes from the 2 included hours) → 750. Time: 300 min → cost 225, margin 525
    assert (report["actual"], report["actual_margin"], report["minutes"], report["cost"]) == (
        "750.00",
        "525.00",
        300,
        "225.00",
    )
    offers = offers_of(report)
    assert (offers["essentials"]["total"], offers["essentials"]["margin"]) == ("750.00", "525.00")
    assert offers["essentials"]["difference"] == "0.00"
    # monitoring: two fees (200) and every minute at the MSP's rate, the offer has none: 300 min × 150 = 750
    assert (offers["watch"]["fees"], offers["watch"]["usage"], offers["watch"]["total"]) == (
        "200.00",
        "750.00",
        "950.00",
    )
    # a 20-hour block (+2 bonus) bought when the first entry came: one whole block, 1,020 minutes left over
    block = offers["block-20"]
    assert (block["total"], block["margin"]) == ("2400.00", "2175.00")
    assert block["blocks"] == {"bought": 1, "money": "2400.00", "dates": ["2026-09-03"], "minutes_left": 1020}
    # 2-hour blocks: 150 min on 09-03 needs two, 45 more fit, 105 on 10-05 needs a third → 3 × 250
    small = offers["block-2"]["blocks"]
    assert (small["bought"], small["dates"], small["minutes_left"]) == (
        3,
        ["2026-09-03", "2026-09-03", "2026-10-05"],
        60,
    )
    assert offers["block-2"]["total"] == "750.00"
    # a retainer with nothing held: every hour at its 100 (150 + 45 + 105 minutes = 500)
    assert offers["retainer-100"]["total"] == "500.00" and offers["retainer-100"]["margin"] == "275.00"
    assert [m["total"] for m in offers["retainer-100"]["months"]] == ["325.00", "175.00"]
    assert offers["retainer-100"]["effective_rate"] == "100.00"


def test_the_fit_counts_the_same_time_as_profitability(db):
    clock.set_now("2026-11-24T12:00:00Z")
    import_book(db, book(ACME))
    add_alert(db, "acme", "quote", "2026-09-10T09:00:00", service="backup_monitoring")
    report = fit_report(db, "acme", "2026-09", "2026-10")
    (client,) = profitability_report(db, "2026-09", "2026-10", client="acme")["clients"]
    assert report["minutes"] == client["minutes"] == 345 and report["cost"] == client["cost"] == "258.75"
    assert all(o["minutes"] == 345 and o["cost"] == "258.75" for o in report["offers"])
    assert offers_of(report)["essentials"]["margin"] == report["actual_margin"] == "491.25"


def table_counts(db):
    with db.reader() as s:
        return {t.name: s.scalar(select(func.count()).select_from(t)) for t in Base.metadata.sorted_tables}


def test_fit_and_reports_never_change_the_database(db, cli):
    clock.set_now("2026-11-24T12:00:00Z")
    import_book(db, book(ACME))
    add_alert(db, "acme", "quote", "2026-09-10T09:00:00")
    before, exported = table_counts(db), export_book(db)
    fit_report(db, "acme", "2026-01", "2026-12")
    profitability_report(db, "2026-01", "2026-12")
    unpaid_report(db, "2026-09")
    cli("report", "fit", "acme", "--from", "2026-09", "--to", "2026-10", "--json")
    cli("report", "profitability", "--explain", "--client", "acme", "--month", "2026-09", "--json")
    assert table_counts(db) == before
    assert export_book(db) == exported


def test_cli_fit_json_csv_and_table(db, cli, tmp_path):
    clock.set_now("2026-11-24T12:00:00Z")
    import_book(db, book(ACME))
    report = json.loads(cli("report", "fit", "acme", "--from", "2026-09", "--to", "2026-10", "--json").stdout)
    assert (report["client"], report["from"], report["to"], report["actual"]) == (
        "acme",
        "2026-09",
        "2026-10",
        "750.00",
    )
    assert [o["offer"] for o in report["offers"]] == [o["key"] for o in CATALOG]
    assert all({"offer", "total", "margin"} <= set(o) for o in report["offers"])
    path = tmp_path / "fit.csv"
    cli("report", "fit", "acme", "--from", "2026-09", "--to", "2026-10", "--csv", str(path))
    rows = {r["offer"]: r for r in csv.DictReader(path.open())}
    assert rows["block-2"]["total"] == "750.00" and rows["block-2"]["blocks_bought"] == "3"
    assert rows["essentials"]["actual"] == "750.00"
    table = cli("report", "fit", "acme", "--from", "2026-09", "--to", "2026-10").stdout
    assert "essentials" in table and "750.00" in table
    missing = cli("report", "fit", "nobody", "--from", "2026-09", check=False)
    assert missing.returncode != 0 and "nobody" in missing.stderr


# ------------------------------------------------------------------------------------------ would cover

CHEAP = {"key": "cheap", "kind": "managed", "monthly_fee": "200.00", "included_hours": 10, "overage_rate": "150.00",
         "covers": ["monitoring", "remote_support"]}  # fmt: skip
OAK = {
    "key": "oak",
    "name": "Oak Florists",
    "billable_alerts": True,
    "time_entries": [{"key": "o1", "date": "2026-11-03", "minutes": 600, "work_type": "remote_support"}],
}


def test_would_cover_is_the_cheapest_offer_that_makes_the_client_worth_serving(db):
    clock.set_now("2026-11-24T12:00:00Z")
    import_book(db, book(OAK, catalog=[CHEAP, *CATALOG]))
    add_alert(db, "oak", "quote", "2026-11-10T09:00:00")
    (row,) = unpaid_report(db, "2026-11")["clients"]
    # cheap: 200 for 10 hours of work + 45 min of an alert: 18.60/hour, below the 100 target.
    # essentials: 300 + 8 hours of overage at 120 = 1260: 117.21/hour. watch: 100 + 10 hours at 150 = 1600.
    assert row["would_cover"] == {
        "offer": "essentials",
        "kind": "managed",
        "monthly_fee": "300.00",
        "total": "1260.00",
        "margin": "776.25",
        "effective_rate": "117.21",
        "chosen_by": "lowest_total",
    }


def test_would_cover_falls_back_to_the_best_margin():
    win = rules.window(date(2026, 11, 1), date(2026, 11, 1))
    policy = coverage.Policy(15, Decimal("150.00"))
    economics = rules.Economics(Decimal("45.00"), Decimal("100.00"), 45)
    works = [coverage.Work("o1", date(2026, 11, 3), 600, "remote_support")]
    cheap = rules.offer_from(CHEAP)
    dearer = rules.offer_from(CHEAP | {"key": "dearer", "monthly_fee": "250.00"})
    watch = rules.offer_from(CATALOG[1])
    fits = [rules.replay(o, works, win, policy, {}, economics) for o in (cheap, dearer)]
    chosen, how = rules.would_cover(fits)
    assert (chosen.offer.key, how, chosen.total) == ("dearer", "best_margin", Decimal("250.00"))
    assert rules.covering([cheap, watch, rules.offer_from(CATALOG[2])], {"monitoring"}) == [cheap, watch]
    assert rules.covering([cheap], set()) == [] and rules.would_cover([]) is None


# ---------------------------------------------------------------------------------------- properties

FIRST = date(2026, 1, 1)
POLICY = coverage.Policy(rounding_minutes=15, hourly_rate=Decimal("150.00"), block_bonus=((20, 2),))
ECONOMICS = rules.Economics(Decimal("45.00"), Decimal("100.00"), 45)
money = st.integers(min_value=100, max_value=50_000).map(lambda cents: Decimal(cents) / 100)
works_ = st.lists(
    st.tuples(
        st.integers(0, 120), st.integers(1, 300), st.sampled_from(["remote_support", "malware_cleanup", "onsite"])
    ),
    max_size=30,
).map(lambda rows: [coverage.Work(f"w{i:03d}", FIRST + timedelta(days=d), m, t) for i, (d, m, t) in enumerate(rows)])


@st.composite
def agreement_offers(draw):
    kind = draw(st.sampled_from(["managed", "monitoring", "call_before_service", "retainer", "adhoc"]))
    raw = {"key": "offer", "kind": kind, "covers": ["remote_support", "monitoring"], "excludes": ["malware_cleanup"]}
    if kind in ("managed", "monitoring", "call_before_service"):
        raw["monthly_fee"] = str(draw(money))
    if kind == "managed":
        raw |= {"included_hours": draw(st.sampled_from([0, 1, 5])), "overage_rate": str(draw(money))}
    if kind == "monitoring":
        raw["block_hours_per_month"] = 2
    if kind != "monitoring":
        raw["hourly_rate"] = str(draw(money))
    return raw


@settings(max_examples=60)
@given(agreement_offers(), works_, st.dictionaries(st.sampled_from(["2026-01", "2026-03"]), st.integers(0, 2)))
def test_the_replay_of_the_actual_arrangement_is_what_it_paid(raw, works, alerts):
    win = rules.window(FIRST, date(2026, 4, 1))
    offer = rules.offer_from(raw)
    signed = replace(offer.terms, start=FIRST, key="signed")
    allocation = coverage.allocate(works, [signed], [], [], POLICY, through=win.last)
    actual = rules.profitability("c", [signed], [], allocation, win, alerts, ECONOMICS)
    fit = rules.replay(offer, works, win, POLICY, alerts, ECONOMICS)
    assert fit.figures == actual.figures
    assert [m.total for m in fit.months] == [m.figures.revenue for m in actual.months]
    assert fit.total == fit.fees + fit.usage


@settings(max_examples=60)
@given(works_, st.sampled_from([1, 2, 20]), money)
def test_a_block_offer_buys_whole_blocks_when_the_balance_runs_out(works, hours, price):
    win = rules.window(FIRST, date(2026, 4, 1))
    offer = rules.offer_from({"key": "blk", "block_hours": hours, "price": str(price)})
    fit = rules.replay(offer, works, win, POLICY, {}, ECONOMICS)
    size = hours * 60 + (120 if hours >= 20 else 0)
    works = [w for w in works if w.date in win]
    used = sum(coverage.round_up(w.minutes, 15) for w in works)
    assert len(fit.blocks_bought) == -(-used // size)  # whole blocks, no more than needed
    assert fit.total == price * len(fit.blocks_bought) and fit.usage == 0
    assert fit.blocks_left_minutes == size * len(fit.blocks_bought) - used
    dates = sorted(w.date for w in works)
    assert all(b.purchased in dates for b in fit.blocks_bought)
    assert sum(m.total for m in fit.months) == fit.total == round_cents(fit.total)
