"""The offboarding plan (DOMAIN.md "Offboarding"; seeds 000, 002, 003): examples on INTERFACE.md's `acme`
and properties over generated inventories and answers."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import date, datetime
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tenure.offboarding.rules import (
    ANTIVIRUS,
    EXIT_CONDITIONS,
    SIEM_ITEMS,
    WAIT_SECONDS,
    AccountKind,
    Agreement,
    Answers,
    BackupJob,
    Contact,
    Device,
    InvalidAnswers,
    Inventory,
    MovingTo,
    Plan,
    Step,
    VendorAccount,
    parse_answers,
    plan,
)

ADA = {"name": "Ada Stone", "email": "ada@incoming-msp.example"}
SIEM_DETAILS = {"edition": "SIEM Pro", "sensors": 1, "cloud_connectors": 2, "agent_devices": 5,
                "scheduled_reports": 3, "users": 4}


def acme(rmm_vendor: str = "tacticalrmm", **changes: Any) -> Inventory:
    inventory = Inventory(
        client="acme",
        client_name="Acme Dental",
        contacts=(Contact("Jo Smith", "jo@acmedental.example", ("primary", "billing", "admin")),),
        devices=(
            Device(
                key="acme-dc01", hostname="ACME-DC01", role="server",
                features=("patching", "remote_control", "antivirus", "automated_tasks", "backup"),
                checks=("disk_space", "cpu", "backup_job"), rmm_vendor=rmm_vendor, rmm_id="agent-1",
            ),
        ),
        accounts=(
            VendorAccount("acme-rmm", "rmm", rmm_vendor, "7"),
            VendorAccount("acme-siem", "siem", "blumira", None, dict(SIEM_DETAILS)),
            VendorAccount("acme-backup", "backup", "restic", "/srv/restic/acme"),
            VendorAccount("acme-mail", "hosted", "microsoft365", None, {"service": "email"}),
        ),
        backup_jobs=(BackupJob("dc01-nightly", "acme-dc01", "veeam", "DC01 nightly"),),
        agreements=(Agreement("acme-managed", "managed"),),
        open_tickets=2,
    )
    return replace(inventory, **changes)


def answers(**changes: Any) -> Answers:
    data: dict[str, Any] = {
        "end_of_service": date(2026, 12, 15), "reason": "client_cancelled", "access": "full",
        "agent_deployment": "group_policy", "moving_to": "other_msp", "new_contact": dict(ADA),
        "delete_data": False,
    }
    data.update(changes)
    return parse_answers({k: v for k, v in data.items() if v is not None or k == "new_contact"})


def ancestors(p: Plan) -> dict[str, frozenset[str]]:
    out: dict[str, frozenset[str]] = {}
    for step in p.steps:
        found: set[str] = set()
        for dep in step.depends_on:
            found.add(dep)
            found |= out[dep]
        out[step.key] = frozenset(found)
    return out


# ------------------------------------------------------------------------------------------- examples


def test_acme_leaving_for_another_msp_with_full_access_by_group_policy() -> None:
    p = plan(acme(), answers(security_account="keep"))
    steps = p.by_key()
    assert p.client == "acme"
    assert [s.key for s in p.steps][:3] == ["p1.snapshot", "p1.asset-report", "p1.licenses"]
    assert [s.key for s in p.steps][-2:] == ["p7.lessons", "p7.verify"]

    # phase 2: the agreement ends on the end date; the final invoice comes after the closeout
    end = steps["p2.agreement-end.acme-managed"]
    assert (end.kind, end.action, end.target["end"]) == ("auto", "agreements.end", "2026-12-15")
    assert set(steps["p2.final-invoice"].depends_on) == {
        "p2.agreement-end.acme-managed", "p2.billing-stop", "p2.prepaid-settle"}

    # phase 3: one step per feature and per check, automatic through Tactical RMM
    for feature in ("patching", "remote_control", "antivirus", "automated_tasks", "backup"):
        step = steps[f"p3.feature-off.acme-dc01.{feature}"]
        assert (step.kind, step.action) == ("auto", "tacticalrmm.disable_feature")
        assert dict(step.target) == {"device": "acme-dc01", "hostname": "ACME-DC01", "rmm_vendor": "tacticalrmm",
                                     "rmm_id": "agent-1", "feature": feature, "not_before": "2026-12-15"}
    for check in ("disk_space", "cpu", "backup_job"):
        assert steps[f"p3.check-delete.acme-dc01.{check}"].target["check"] == check
    assert "p3.antivirus-notice" in steps["p3.feature-off.acme-dc01.antivirus"].depends_on
    assert steps["p3.antivirus-notice"].kind == "notice"
    wait = steps["p3.wait"]
    assert wait.kind == "wait" and wait.seconds == WAIT_SECONDS == 7200

    # group policy with full access: one GPO step for the domain, then a verification per device
    gpo = steps["p3.gpo-uninstall"]
    assert gpo.kind == "manual" and "p3.wait" in gpo.depends_on
    assert "Software installation" in (gpo.instructions or "")
    assert steps["p3.uninstall-verify.acme-dc01"].depends_on == ("p3.gpo-uninstall",)
    assert "p3.uninstall.acme-dc01" not in steps
    remove = steps["p3.rmm-remove.acme-rmm"]
    assert (remove.kind, remove.action, remove.target["external_id"]) == ("auto", "tacticalrmm.remove_client", "7")

    # the security vendor: told first, incoming administrator added, then each kind of item removed
    notice = steps["p3.siem-notice.acme-siem"]
    assert notice.kind == "notice"
    assert notice.target["to"] == "support@blumira.com"
    assert set(notice.target["cc"]) == {"msp@blumira.com", "ada@incoming-msp.example", "jo@acmedental.example"}
    email = notice.target["email"]
    for line in ("Organization: Acme Dental", "Current Blumira Edition: SIEM Pro",
                 "End-of-service date: 2026-12-15", "Is the account moving? yes, to another MSP",
                 "De-provisioning complete? no", "Okay to delete all account data? no"):
        assert line in email
    assert email in (notice.instructions or "")
    admin = steps["p3.siem-admin.acme-siem"]
    assert admin.kind == "manual" and admin.target["contact"] == ADA
    assert "Ada Stone" in (admin.instructions or "") and "jo@acmedental.example" in (admin.instructions or "")
    for item in SIEM_ITEMS:
        removal = steps[f"p3.siem-remove.acme-siem.{item}"]
        assert removal.kind == "manual"
        assert removal.target["count"] == SIEM_DETAILS[item]
        assert set(removal.depends_on) == {"p3.siem-notice.acme-siem", "p3.siem-admin.acme-siem"}
    assert "Settings > Sensors > View details" in (steps["p3.siem-remove.acme-siem.sensors"].instructions or "")
    assert "Settings > Users" in (steps["p3.siem-remove.acme-siem.users"].instructions or "")
    complete = steps["p3.siem-complete.acme-siem"]
    assert "De-provisioning complete? yes" in complete.target["email"]

    # backup: restic is handed over automatically; the veeam job gets its own hand-over
    handover = steps["p4.handover.acme-backup"]
    assert (handover.kind, handover.action) == ("auto", "restic.export_copy")
    assert steps["p4.handover-verify.acme-backup"].kind == "auto"
    assert steps["p4.handover.job.dc01-nightly"].kind == "manual"
    assert "p4.handover-verify.job.dc01-nightly" in steps["p4.job-stop.dc01-nightly"].depends_on
    assert "p4.handover-verify.acme-backup" in steps["p4.account-close.acme-backup"].depends_on
    assert steps["p4.account-close.acme-backup"].target["delete_data"] is False
    off = steps["p3.feature-off.acme-dc01.backup"].depends_on
    assert {"p4.handover-verify.acme-backup", "p4.handover-verify.job.dc01-nightly"} <= set(off)

    # hosted, service desk, lessons, verification
    transition = steps["p5.transition.acme-mail"]
    assert transition.kind == "manual" and transition.target["service"] == "email"
    assert "Ada Stone" in (transition.instructions or "")
    assert steps["p6.tickets"].target["open_tickets"] == 2
    assert steps["p6.credentials"].target["to"] == ADA
    assert steps["p7.lessons"].target["reason"] == "client_cancelled"
    verify = steps["p7.verify"]
    assert verify.kind == "verify" and verify.target["conditions"] == EXIT_CONDITIONS
    assert verify.depends_on == ("p7.lessons",)


def test_acme_plan_as_json_has_the_interface_shape() -> None:
    data = plan(acme(), answers()).to_json()
    assert json.loads(json.dumps(data)) == data
    assert set(data) == {"client", "steps"} and data["client"] == "acme"
    base = {"key", "phase", "title", "kind", "depends_on", "target", "instructions"}
    for step in data["steps"]:
        assert set(step) == (base | {"seconds"} if step["kind"] == "wait" else base)
        assert 1 <= step["phase"] <= 7
        assert isinstance(step["depends_on"], list) and isinstance(step["target"], dict)
    wait = next(s for s in data["steps"] if s["kind"] == "wait")
    assert wait == {**wait, "key": "p3.wait", "seconds": 7200}
    snapshot = data["steps"][0]["target"]
    assert snapshot["accounts"] == ["acme-rmm", "acme-siem", "acme-backup", "acme-mail"]


def test_remote_access_uninstalls_each_agent_through_the_rmm() -> None:
    steps = plan(acme(), answers(access="remote")).by_key()
    uninstall = steps["p3.uninstall.acme-dc01"]
    assert (uninstall.kind, uninstall.action) == ("auto", "tacticalrmm.uninstall_agent")
    assert {"p3.wait", "p3.antivirus-notice"} <= set(uninstall.depends_on)
    assert "p3.gpo-uninstall" not in steps
    assert "p3.uninstall.acme-dc01" in steps["p3.rmm-remove.acme-rmm"].depends_on


def test_full_access_without_group_policy_uninstalls_by_hand_where_the_rmm_cannot() -> None:
    steps = plan(acme(rmm_vendor="nsight"), answers(agent_deployment="manual")).by_key()
    uninstall = steps["p3.uninstall.acme-dc01"]
    assert uninstall.kind == "manual" and uninstall.action is None
    assert "ACME-DC01" in (uninstall.instructions or "") and "Uninstall" in (uninstall.instructions or "")


def test_no_access_leaves_the_agent_orphaned_and_uninstalls_nothing() -> None:
    p = plan(acme(), answers(access="none"))
    steps = p.by_key()
    assert not [k for k in steps if k.startswith(("p3.uninstall", "p3.gpo"))]
    orphan = steps["p3.orphan.acme-dc01"]
    assert orphan.kind == "manual" and orphan.target["agent"] == "orphaned"
    assert orphan.depends_on == ("p3.wait",)
    assert steps["p3.orphaned-agents-notice"].kind == "notice"
    assert "p3.orphan.acme-dc01" in steps["p3.rmm-remove.acme-rmm"].depends_on
    # features and checks still go: that is what makes the orphan harmless (seed 000)
    assert "p3.feature-off.acme-dc01.patching" in steps
    assert "no access" in (steps["p4.job-stop.dc01-nightly"].instructions or "")


def test_moving_to_own_it_adds_the_clients_administrator_first() -> None:
    contact = {"name": "Jo Smith", "email": "jo@acmedental.example"}
    steps = plan(acme(), answers(moving_to="own_it", new_contact=contact, security_account="keep")).by_key()
    admin = steps["p3.siem-admin.acme-siem"]
    assert "Acme Dental's administrator" in admin.title
    assert "at least one Administrator from the client" in (admin.instructions or "")
    email = steps["p3.siem-notice.acme-siem"].target["email"]
    assert "Is the account moving? yes, onto its own" in email
    assert "Okay to delete all account data? no (the account moves)" in email
    assert "ada@" not in " ".join(steps["p3.siem-notice.acme-siem"].target["cc"])


def test_unknown_destination_with_deletion_allowed() -> None:
    steps = plan(acme(), answers(moving_to="unknown", new_contact=None, delete_data=True)).by_key()
    assert "p3.siem-admin.acme-siem" not in steps
    email = steps["p3.siem-notice.acme-siem"].target["email"]
    assert "Is the account moving? unknown" in email and "Okay to delete all account data? yes" in email
    assert steps["p3.siem-remove.acme-siem.users"].depends_on == ("p3.siem-notice.acme-siem",)
    assert steps["p4.account-close.acme-backup"].target["delete_data"] is True
    assert steps["p6.credentials"].target["to"] == {"name": "Jo Smith", "email": "jo@acmedental.example"}


def test_a_vendor_without_a_write_api_gets_manual_steps_with_where_to_click() -> None:
    steps = plan(acme(rmm_vendor="nsight"), answers()).by_key()
    off = steps["p3.feature-off.acme-dc01.antivirus"]
    assert off.kind == "manual" and off.action is None
    text = off.instructions or ""
    assert "N-sight RMM" in text and "ACME-DC01" in text and "Managed Antivirus" in text and "agent-1" in text
    check = steps["p3.check-delete.acme-dc01.cpu"]
    assert check.kind == "manual" and "'cpu'" in (check.instructions or "")
    remove = steps["p3.rmm-remove.acme-rmm"]
    assert remove.kind == "manual" and "delete it" in (remove.instructions or "")


def test_an_empty_siem_account_is_told_once_that_it_is_complete() -> None:
    empty = VendorAccount("acme-siem", "siem", "blumira", None, {"edition": "Free"})
    steps = plan(acme(accounts=(empty,)), answers(moving_to="unknown", new_contact=None)).by_key()
    assert "De-provisioning complete? yes" in steps["p3.siem-notice.acme-siem"].target["email"]
    assert not [k for k in steps if k.startswith(("p3.siem-remove", "p3.siem-complete", "p3.siem-admin"))]


def test_devices_on_an_rmm_without_an_account_still_get_a_removal_step() -> None:
    steps = plan(acme(rmm_vendor="nsight", accounts=()), answers()).by_key()
    assert steps["p3.rmm-remove.nsight"].target == {"account": None, "vendor": "nsight", "external_id": None,
                                                   "client": "acme", "not_before": "2026-12-15"}


def test_the_plan_is_deterministic() -> None:
    assert plan(acme(), answers()).to_json() == plan(acme(), answers()).to_json()


def test_inconsistent_inventory_is_refused() -> None:
    inventory = acme()
    twice = replace(inventory, devices=inventory.devices * 2)
    with pytest.raises(ValueError, match=r"devices\[1\].key: 'acme-dc01' appears twice"):
        plan(twice, answers())
    bad = VendorAccount("acme-siem", "siem", "blumira", None, {"sensors": "many"})
    with pytest.raises(ValueError, match=r"accounts\[acme-siem\].sensors"):
        plan(replace(inventory, accounts=(bad,)), answers())


def test_a_plan_for_ten_thousand_devices_builds() -> None:
    devices = tuple(
        Device(f"d{i:05d}", f"HOST-{i:05d}", "workstation", ("patching", "antivirus", "remote_control"),
               ("disk_space", "cpu"), "tacticalrmm", f"agent-{i}")
        for i in range(10_000)
    )
    p = plan(acme(devices=devices), answers(access="remote", agent_deployment="manual"))
    keys = [s.key for s in p.steps]
    assert len(keys) == len(set(keys))
    assert sum(1 for k in keys if k.startswith("p3.uninstall.")) == 10_000
    assert len(p.by_key()["p3.wait"].depends_on) >= 50_000


# -------------------------------------------------------------------------------------------- answers


def test_answers_as_the_interface_gives_them() -> None:
    parsed = parse_answers({
        "end_of_service": "2026-12-15", "reason": "client_cancelled", "access": "full",
        "agent_deployment": "group_policy", "moving_to": "other_msp", "new_contact": dict(ADA),
        "delete_data": False,
    })
    assert parsed == Answers(date(2026, 12, 15), "client_cancelled", "full", "group_policy", "other_msp",
                             Contact("Ada Stone", "ada@incoming-msp.example"), False)


def test_answers_defaults() -> None:
    parsed = parse_answers({"end_of_service": date(2026, 12, 15), "reason": "msp_ended", "access": "none"})
    assert (parsed.agent_deployment, parsed.moving_to, parsed.new_contact, parsed.delete_data) == (
        "unknown", "unknown", None, False)


@pytest.mark.parametrize(("change", "message"), [
    ({"access": "some"}, "access: 'some' is not one of 'full', 'remote', 'none'"),
    ({"reason": "bored"}, "reason: 'bored' is not one of 'client_cancelled', 'msp_ended', 'other'"),
    ({"agent_deployment": "sccm"}, "agent_deployment: 'sccm' is not one of 'group_policy', 'manual', 'unknown'"),
    ({"moving_to": "mars"}, "moving_to: 'mars' is not one of 'own_it', 'other_msp', 'unknown'"),
    ({"end_of_service": "15/12/2026"}, "end_of_service: '15/12/2026' is not a date (YYYY-MM-DD)"),
    ({"end_of_service": datetime(2026, 12, 15, 9)}, "end_of_service: '2026-12-15T09:00:00' is not a date"),
    ({"delete_data": "yes"}, "delete_data: 'yes' is not true or false"),
    ({"new_contact": None}, "new_contact: required when moving_to is 'other_msp'"),
    ({"moving_to": "own_it", "new_contact": None}, "new_contact: required when moving_to is 'own_it'"),
    ({"new_contact": {"name": "Ada"}}, "new_contact.email: required"),
    ({"new_contact": {"name": "Ada", "email": "ada"}}, "new_contact.email: 'ada' is not an e-mail address"),
    ({"acces": "full"}, "acces: not an offboarding answer"),
])
def test_bad_answers_name_their_field(change: dict[str, Any], message: str) -> None:
    data: dict[str, Any] = {
        "end_of_service": "2026-12-15", "reason": "client_cancelled", "access": "full",
        "agent_deployment": "group_policy", "moving_to": "other_msp", "new_contact": dict(ADA),
        "delete_data": False,
    }
    data.update(change)
    with pytest.raises(InvalidAnswers) as caught:
        parse_answers(data)
    assert isinstance(caught.value, ValueError)
    assert str(caught.value).startswith(message)


def test_every_problem_is_reported_at_once() -> None:
    with pytest.raises(InvalidAnswers) as caught:
        parse_answers({"reason": "x", "access": "some"})
    assert caught.value.problems == (
        "end_of_service: required",
        "reason: 'x' is not one of 'client_cancelled', 'msp_ended', 'other'",
        "access: 'some' is not one of 'full', 'remote', 'none'",
    )


def test_answers_built_directly_are_checked_too() -> None:
    with pytest.raises(ValueError, match="new_contact: required"):
        Answers(date(2026, 12, 15), "client_cancelled", "full", "manual", "other_msp")
    with pytest.raises(ValueError, match="access: 'some'"):
        Answers(date(2026, 12, 15), "client_cancelled", "some", "manual", "unknown")  # type: ignore[arg-type]


# ----------------------------------------------------------------------------------------- properties

FEATURES = ["patching", "remote_control", "antivirus", "automated_tasks", "backup", "web_protection"]
CHECKS = ["disk_space", "cpu", "backup_job", "ping", "event_log"]
AUTOMATABLE = frozenset({"tacticalrmm", "restic"})


@st.composite
def inventories(draw: st.DrawFn) -> Inventory:
    slug = st.from_regex(r"[a-z][a-z0-9-]{0,6}", fullmatch=True)
    device_keys = draw(st.lists(slug, max_size=5, unique=True))
    devices = tuple(
        Device(
            key=f"dev-{key}", hostname=key.upper(),
            role=draw(st.sampled_from(["server", "workstation", "network", "other"])),
            features=tuple(draw(st.lists(st.sampled_from(FEATURES), max_size=7))),
            checks=tuple(draw(st.lists(st.sampled_from(CHECKS), max_size=5))),
            rmm_vendor=draw(st.sampled_from(["tacticalrmm", "nsight", None])),
            rmm_id=draw(st.none() | slug),
        )
        for key in device_keys
    )
    accounts = []
    kinds: list[AccountKind] = ["rmm", "siem", "backup", "hosted", "other"]
    for i, kind in enumerate(draw(st.lists(st.sampled_from(kinds), max_size=6))):
        if kind == "rmm":
            vendor = draw(st.sampled_from(["tacticalrmm", "nsight"]))
            details: dict[str, Any] = {}
        elif kind == "siem":
            vendor = draw(st.sampled_from(["blumira", "perch"]))
            details = {item: draw(st.integers(0, 3)) for item in SIEM_ITEMS}
            details["edition"] = draw(st.sampled_from(["Free", "SIEM Pro"]))
        elif kind == "backup":
            vendor = draw(st.sampled_from(["restic", "datto"]))
            details = {}
        elif kind == "hosted":
            vendor = draw(st.sampled_from(["microsoft365", "godaddy"]))
            details = {"service": draw(st.sampled_from(["email", "dns", "domain", "web"]))}
        else:
            vendor, details = "itglue", {}
        accounts.append(VendorAccount(f"acct-{i}", kind, vendor, draw(st.none() | slug), details))
    jobs = tuple(
        BackupJob(f"job-{i}", draw(st.sampled_from([None, *[d.key for d in devices]])),
                  draw(st.sampled_from(["restic", "veeam", "datto"])), f"Job {i}")
        for i in range(draw(st.integers(0, 3)))
    )
    agreements = tuple(
        Agreement(f"agr-{i}", draw(st.sampled_from(["managed", "monitoring", "retainer"])))
        for i in range(draw(st.integers(0, 2)))
    )
    contacts = tuple(draw(st.lists(st.builds(
        Contact, st.sampled_from(["Jo", "Sam"]), st.none() | st.sampled_from(["jo@c.example", "sam@c.example"]),
        st.lists(st.sampled_from(["primary", "billing", "technical", "admin"]), max_size=2).map(tuple),
    ), max_size=2)))
    return Inventory(
        client="client", client_name="Client Co", contacts=contacts, devices=devices, accounts=tuple(accounts),
        backup_jobs=jobs, agreements=agreements, open_tickets=draw(st.integers(0, 5)),
        automatable_vendors=AUTOMATABLE,
    )


@st.composite
def all_answers(draw: st.DrawFn) -> Answers:
    destinations: list[MovingTo] = ["own_it", "other_msp", "unknown"]
    moving_to = draw(st.sampled_from(destinations))
    contact = st.just(Contact("Ada Stone", "ada@new.example"))
    new_contact = draw(contact if moving_to != "unknown" else st.none() | contact)
    return Answers(
        end_of_service=draw(st.dates(date(2025, 1, 1), date(2030, 12, 31))),
        reason=draw(st.sampled_from(["client_cancelled", "msp_ended", "other"])),
        access=draw(st.sampled_from(["full", "remote", "none"])),
        agent_deployment=draw(st.sampled_from(["group_policy", "manual", "unknown"])),
        moving_to=moving_to,
        new_contact=new_contact,
        delete_data=draw(st.booleans()),
        security_account=draw(st.sampled_from(["close", "unknown"] + (["keep"] if new_contact else []))),
        stop_services_on=draw(st.none() | st.dates(date(2024, 1, 1), date(2025, 1, 1))),
    )


def _is_uninstall(step: Step) -> bool:
    return step.key.startswith("p3.uninstall.") or step.key == "p3.gpo-uninstall"


def _agent_removal(step: Step) -> bool:
    return step.key.startswith(("p3.uninstall", "p3.gpo-", "p3.orphan"))


@settings(max_examples=150)
@given(inventory=inventories(), ans=all_answers())
def test_plan_properties(inventory: Inventory, ans: Answers) -> None:
    p = plan(inventory, ans)
    steps = p.by_key()
    keys = [s.key for s in p.steps]
    anc = ancestors(p)
    devices = {d.key: d for d in inventory.devices}
    agents = [d for d in inventory.devices if d.rmm_vendor]

    # keys are unique; dependencies only point to earlier steps
    assert len(keys) == len(set(keys))
    seen: set[str] = set()
    for step in p.steps:
        assert set(step.depends_on) <= seen, step.key
        assert len(step.depends_on) == len(set(step.depends_on))
        seen.add(step.key)
        assert 1 <= step.phase <= 7
        assert int(step.key[1]) == step.phase
        if step.kind == "auto":
            assert step.action
        if step.kind in ("manual", "approval"):
            assert step.instructions

    # lessons learned, then the verification, last; the verification depends on everything
    assert keys[-2:] == ["p7.lessons", "p7.verify"]
    assert [s.kind for s in p.steps].count("verify") == 1 and steps["p7.verify"].kind == "verify"
    assert anc["p7.verify"] == set(keys) - {"p7.verify"}
    assert anc["p7.lessons"] == set(keys) - {"p7.lessons", "p7.verify"}

    # every device's every feature and check has its step, and only those
    expected = {(d.key, f) for d in inventory.devices for f in d.features}
    offs = [s for s in p.steps if s.key.startswith("p3.feature-off.")]
    assert {(s.target["device"], s.target["feature"]) for s in offs} == expected and len(offs) == len(expected)
    expected = {(d.key, c) for d in inventory.devices for c in d.checks}
    deletes = [s for s in p.steps if s.key.startswith("p3.check-delete.")]
    assert {(s.target["device"], s.target["check"]) for s in deletes} == expected
    assert len(deletes) == len(expected)
    for step in offs + deletes:
        auto = devices[step.target["device"]].rmm_vendor in AUTOMATABLE
        assert step.kind == ("auto" if auto else "manual")

    # one wait of at least two hours after every feature and check step; nothing uninstalls before it
    waits = [s for s in p.steps if s.kind == "wait"]
    assert len(waits) == 1 and waits[0].seconds is not None and waits[0].seconds >= 7200
    assert {s.key for s in offs + deletes} <= set(waits[0].depends_on)
    for step in p.steps:
        if _agent_removal(step) or step.key.startswith("p3.rmm-remove."):
            assert "p3.wait" in anc[step.key], step.key

    # no uninstall without access; with none, one orphan record per agent
    uninstalls = [s for s in p.steps if _is_uninstall(s)]
    orphans = [s for s in p.steps if s.key.startswith("p3.orphan.")]
    if ans.access == "none":
        assert uninstalls == [] and not [k for k in keys if k.startswith(("p3.gpo", "p3.uninstall"))]
        assert sorted(s.target["device"] for s in orphans) == sorted(d.key for d in agents)
        assert all(s.target["agent"] == "orphaned" and s.kind in ("manual", "notice") for s in orphans)
    else:
        assert orphans == []
        if ans.access == "full" and ans.agent_deployment == "group_policy" and agents:
            assert [s.key for s in uninstalls] == ["p3.gpo-uninstall"]
            assert all(f"p3.uninstall-verify.{d.key}" in steps for d in agents)
        else:
            assert sorted(s.target["device"] for s in uninstalls) == sorted(d.key for d in agents)

    # nothing removes managed antivirus before the client is told
    av_devices = {d.key for d in inventory.devices if ANTIVIRUS in d.features}
    assert ("p3.antivirus-notice" in steps) == bool(av_devices)
    for step in p.steps:
        removes_av = (
            (step.key.startswith("p3.feature-off.") and step.target["feature"] == ANTIVIRUS)
            or (step.key.startswith("p3.uninstall.") and step.target["device"] in av_devices)
            or (step.key == "p3.gpo-uninstall" and bool(av_devices & {d.key for d in agents}))
            or (step.key.startswith("p3.rmm-remove.") and bool(av_devices))
        )
        if removes_av:
            assert "p3.antivirus-notice" in anc[step.key], step.key

    # the client leaves each RMM after every uninstall and orphan record; every agent vendor is covered
    removals = [s for s in p.steps if s.key.startswith("p3.rmm-remove.")]
    family = {s.key for s in p.steps if _agent_removal(s)}
    for step in removals:
        assert family <= anc[step.key]
    covered = {s.target["vendor"] for s in removals}
    assert {d.rmm_vendor for d in agents} <= covered
    assert {a.key for a in inventory.accounts if a.kind == "rmm"} <= {s.target["account"] for s in removals}

    # security vendors: told first, then the administrator, then one removal per item kind present
    for account in (a for a in inventory.accounts if a.kind == "siem"):
        notice = steps[f"p3.siem-notice.{account.key}"]
        assert notice.kind == "notice" and f"Organization: {inventory.client_name}" in notice.target["email"]
        admin = f"p3.siem-admin.{account.key}"
        assert (admin in steps) == (ans.security_account == "keep")
        for item in SIEM_ITEMS:
            key = f"p3.siem-remove.{account.key}.{item}"
            assert (key in steps) == (account.details[item] > 0)
            if key in steps:
                assert notice.key in steps[key].depends_on
                assert admin not in steps or admin in steps[key].depends_on

    # the final invoice after the agreements are closed out
    closeout = {f"p2.agreement-end.{a.key}" for a in inventory.agreements} | {"p2.billing-stop",
                                                                               "p2.prepaid-settle"}
    assert closeout <= set(steps["p2.final-invoice"].depends_on)

    # backups stop only after the client holds a verified copy
    verified = {k for k in keys if k.startswith("p4.handover-verify.")}
    for key in verified:
        assert key.replace("p4.handover-verify.", "p4.handover.") in anc[key]
    for account in (a for a in inventory.accounts if a.kind == "backup"):
        assert f"p4.handover-verify.{account.key}" in anc[f"p4.account-close.{account.key}"]
    for job in inventory.backup_jobs:
        stop = f"p4.job-stop.{job.key}"
        assert anc[stop] & verified
        assert stop in anc[f"p4.monitoring-end.{job.key}"]
    for step in offs:
        if step.target["feature"] == "backup" and verified:
            assert verified <= anc[step.key]

    # nothing destructive before the owner's approval
    for step in p.steps:
        if step.phase in (3, 4, 5) and not step.key.startswith(("p3.approval", "p4.handover")):
            assert "p3.approval" in anc[step.key], step.key

    # JSON as INTERFACE.md gives it
    data = p.to_json()
    assert json.loads(json.dumps(data)) == data
    assert [s["key"] for s in data["steps"]] == keys
    assert all(("seconds" in s) == (s["kind"] == "wait") for s in data["steps"])


@settings(max_examples=100)
@given(inventory=inventories(), ans=all_answers(), data=st.data())
def test_plan_does_not_depend_on_the_inventory_order(inventory: Inventory, ans: Answers, data: st.DataObject) -> None:
    shuffled = replace(
        inventory,
        devices=tuple(data.draw(st.permutations(inventory.devices))),
        accounts=tuple(data.draw(st.permutations(inventory.accounts))),
        backup_jobs=tuple(data.draw(st.permutations(inventory.backup_jobs))),
        agreements=tuple(data.draw(st.permutations(inventory.agreements))),
    )
    assert plan(shuffled, ans).to_json() == plan(inventory, ans).to_json()
