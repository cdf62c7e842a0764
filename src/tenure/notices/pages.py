"""The pages behind signed links (`/n/<token>`), for client contacts without an account.

GET shows what the link is for and asks to confirm: it never changes anything (mail scanners and link
previews open links on their own). POST records the answer, once: a link already answered is refused with
a page saying when and how, an expired link (older than 45 days) or a tampered one is refused too.

A refusal is a page too, with its status: 400 not a valid link, 404 what it was for is gone, 409 answered
already, 410 expired (`/openapi.json` lists them, api/notices_routes.py). The token is a credential: the
request log shows only its first characters (operations/http.py).

Links carry `{"k": "m", "d": decision, "a": "approve"|"defer"}` (an item of a monthly call-before-service
notice) or `{"k": "r", "n": notice}` (a low-balance or replenishment notice: ask for a new block, or to
top up a retainer; the request is recorded as a `block_request` notice to staff), or `{"k": "q", "q": notice,
"a": "approve"|"decline", "s": signer}` (a quote on a ticket, desk/mail/quotes.py).
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from tenure import clock
from tenure.clients.models import Client
from tenure.db.engine import Database
from tenure.intake.schedule import zone_of
from tenure.maintenance import service as maintenance
from tenure.msp.models import MspSettings
from tenure.notices import links
from tenure.notices.mailer import staff_addresses
from tenure.notices.models import Notice
from tenure.notices.outbox import REQUEST_LINKS
from tenure.notices.render import Page, hours, long_date, money, render_notice


def _msp(db: Database) -> MspSettings | None:
    with db.reader() as s:
        return s.scalars(select(MspSettings).limit(1)).first()


def _local(db: Database, moment: Any) -> date:
    msp = _msp(db)
    return moment.astimezone(zone_of(msp.timezone if msp else None)).date()


def _month_label(month: str) -> str:
    return date.fromisoformat(f"{month}-01").strftime("%B %Y")


def _invalid(name: str) -> Page:
    return Page(
        400,
        "This link is not valid",
        "We could not recognise this link. E-mail programs sometimes cut long addresses in two: open the link "
        "from the e-mail again, or copy the whole address into your browser.\n\nIf it still does not work, "
        "reply to our e-mail and we will sort it out.",
        name,
        tone="error",
    )


def _expired(db: Database, name: str, exc: links.LinkExpired) -> Page:
    when = f" on {long_date(_local(db, exc.expired_at))}" if exc.expired_at else ""
    what = ""
    payload = exc.payload or {}
    if payload.get("k") == "m" and isinstance(payload.get("d"), int):
        view = maintenance.decision_view(db, payload["d"])
        if view is not None:
            what = f" It was for “{view.title}” on the list of {_month_label(view.month)}."
    return Page(
        410,
        "This link has expired",
        f"Links in our e-mails work for {links.LINK_MAX_AGE.days} days; this one expired{when}.{what}\n\n"
        "Reply to our e-mail or call us and we will take your answer, or wait for next month's list.",
        name,
        tone="warn",
    )


def _read(db: Database, token: str) -> tuple[dict[str, Any] | None, Page | None, str]:
    msp = _msp(db)
    name = msp.name if msp else ""
    try:
        return links.read_link(token), None, name
    except links.LinkExpired as exc:
        return None, _expired(db, name, exc), name
    except links.LinkInvalid:
        return None, _invalid(name), name


def open_link(db: Database, token: str) -> Page:
    payload, refused, name = _read(db, token)
    if payload is None:
        assert refused is not None
        return refused
    if payload.get("k") == "m":
        return _decision_page(db, payload, name)
    if payload.get("k") == "r":
        return _request_page(db, payload, name)
    if payload.get("k") == "q":
        return _quote_page(db, payload, name)
    return _invalid(name)


def submit_link(db: Database, token: str, form: dict[str, str]) -> Page:
    payload, refused, name = _read(db, token)
    if payload is None:
        assert refused is not None
        return refused
    if payload.get("k") == "m":
        return _decide(db, payload, form, name)
    if payload.get("k") == "r":
        return _request(db, payload, form, name)
    if payload.get("k") == "q":
        return _quote_answer(db, payload, form, name)
    return _invalid(name)


# --------------------------------------------------------------------------------- maintenance items


def _gone(name: str) -> Page:
    return Page(404, "This item is no longer on our list", "Reply to our e-mail if you have a question.", name)


def _answered(view: maintenance.DecisionView, db: Database) -> Page:
    if view.answer == "superseded":
        return Page(
            409,
            "This item is on a newer list",
            f"“{view.title}” is on a more recent list of recommended work. Please answer it with the links in "
            "that e-mail.",
            view.msp_name,
            tone="warn",
        )
    verb = {"approved": "approved", "deferred": "deferred to next month"}.get(view.answer or "", view.answer or "")
    when = f" on {long_date(_local(db, view.answered_at))}" if view.answered_at else ""
    extra = ""
    if view.answer == "approved":
        extra = "\n\nWe have it on our schedule. If you want to change your answer, reply to our e-mail."
    elif view.answer == "deferred":
        extra = "\n\nIt will be on next month's list. If you changed your mind, reply to our e-mail."
    return Page(
        409,
        "You already answered this",
        f"“{view.title}” ({_month_label(view.month)}) was {verb}{when}.{extra}",
        view.msp_name,
        _details(view),
        tone="info",
    )


def _details(view: maintenance.DecisionView) -> list[tuple[str, str]]:
    rows = [("For", view.client_name), ("List of", _month_label(view.month))]
    if view.minutes is not None:
        rows.append(("Estimated time", hours(view.minutes)))
    if view.price is not None:
        rows.append(("Estimated price", money(view.price, view.currency)))
    return rows


def _decision_page(db: Database, payload: dict[str, Any], name: str) -> Page:
    view = maintenance.decision_view(db, int(payload.get("d") or 0))
    if view is None:
        return _gone(name)
    if view.answer is not None:
        return _answered(view, db)
    approve = payload.get("a") == "approve"
    return Page(
        200,
        f"{'Approve' if approve else 'Defer'}: {view.title}",
        (
            "Confirm below and we will schedule this work. It is billed by the hour; the price shown is our estimate."
            if approve
            else "Confirm below and we will not do this work this month. It will be on next month's list."
        ),
        view.msp_name,
        _details(view),
        form={
            "button": "Approve this work" if approve else "Defer to next month",
            "note": "A note for us (optional)",
            "choices": [],
            "choices_label": "",
        },
    )


def _decide(db: Database, payload: dict[str, Any], form: dict[str, str], name: str) -> Page:
    decision = int(payload.get("d") or 0)
    if maintenance.decision_view(db, decision) is None:
        return _gone(name)
    approve = payload.get("a") == "approve"
    recorded, view = maintenance.answer(db, decision, "approved" if approve else "deferred", form.get("note"))
    if not recorded:
        return _answered(view, db)
    if approve:
        return Page(
            200,
            "Thank you: approved",
            f"We will do “{view.title}” and bill it by the hour. We will be in touch to schedule it if it needs you.",
            view.msp_name,
            _details(view) + ([("Our reference", f"ticket #{view.ticket}")] if view.ticket else []),
            tone="ok",
        )
    return Page(
        200,
        "Thank you: deferred",
        f"We will not do “{view.title}” this month. It will be on next month's list.",
        view.msp_name,
        _details(view),
        tone="ok",
    )


# ------------------------------------------------------------------------------ replenishment requests


def _request_key(notice_id: int) -> str:
    return f"request:{notice_id}"


def _bonus(msp: MspSettings, block_hours: Decimal) -> Decimal:
    """The MSP's free hours for a block of this size: the largest tier whose min_hours ≤ the block's hours."""
    tiers = [
        (Decimal(str(t["min_hours"])), Decimal(str(t["bonus_hours"])))
        for t in msp.block_bonus or []
        if t.get("min_hours") is not None
    ]
    eligible = [(least, bonus) for least, bonus in tiers if least <= block_hours]
    return max(eligible)[1] if eligible else Decimal(0)


def _choices(msp: MspSettings | None, what: str) -> list[tuple[str, str]]:
    if what != "block" or msp is None:
        return []
    choices = []
    for offer in msp.catalog or []:
        if offer.get("block_hours") is None or offer.get("price") is None:
            continue
        hours_ = Decimal(str(offer["block_hours"]))
        bonus = _bonus(msp, hours_)
        label = offer.get("name") or f"{hours_.normalize():f} hours"
        if bonus:
            label += f" (+{bonus.normalize():f} free)"
        choices.append((str(offer["key"]), f"{label}: {money(offer['price'], msp.currency)}"))
    return [*choices, ("other", "Something else (tell us in the note)")] if choices else []


def _source(db: Database, payload: dict[str, Any]) -> tuple[Notice, Client | None] | None:
    with db.reader() as s:
        notice = s.get(Notice, int(payload.get("n") or 0))
        if notice is None or notice.kind not in REQUEST_LINKS:
            return None
        client = s.get(Client, notice.client_id) if notice.client_id else None
        return notice, client


def _already_asked(db: Database, notice_id: int, name: str) -> Page | None:
    with db.reader() as s:
        earlier = s.scalars(select(Notice).where(Notice.dedupe_key == _request_key(notice_id))).first()
    if earlier is None:
        return None
    return Page(
        409,
        "You already asked",
        f"We received your request on {long_date(_local(db, earlier.created_at))} "
        f"({earlier.data.get('choice_label', '')}). We will send the invoice; reply to our e-mail if you want to "
        "change it.",
        name,
        tone="info",
    )


def _request_page(db: Database, payload: dict[str, Any], name: str) -> Page:
    found = _source(db, payload)
    if found is None:
        return _gone(name)
    notice, client = found
    if (asked := _already_asked(db, notice.id, name)) is not None:
        return asked
    what = REQUEST_LINKS[notice.kind]
    choices = _choices(_msp(db), what)
    who = client.name if client else "you"
    return Page(
        200,
        "Ask for a new block of prepaid hours" if what == "block" else "Replenish the retainer",
        (
            f"Choose a block for {who} and confirm: we will send the invoice, and the new hours are used as soon "
            "as it is recorded."
            if what == "block"
            else f"Confirm and we will send {who} an invoice to replenish the retainer; work on hold resumes once "
            "it is paid."
        ),
        name,
        [("About", notice.subject)],
        form={
            "button": "Send my request",
            "note": "A note for us (optional)" if choices or what == "block" else "How much? (optional)",
            "choices": choices,
            "choices_label": "Block",
        },
    )


def _request(db: Database, payload: dict[str, Any], form: dict[str, str], name: str) -> Page:
    found = _source(db, payload)
    if found is None:
        return _gone(name)
    notice, client = found
    if (asked := _already_asked(db, notice.id, name)) is not None:
        return asked
    msp = _msp(db)
    what = REQUEST_LINKS[notice.kind]
    choices = dict(_choices(msp, what))
    choice = form.get("choice") or ""
    if choices and choice not in choices:
        choice = "other"
    label = choices.get(choice) or ("a new block of prepaid hours" if what == "block" else "a retainer deposit")
    note = (form.get("note") or "").strip()[:900] or None
    now = clock.now()
    who = client.name if client else "A client"
    data = {
        "from_notice": notice.id,
        "from_subject": notice.subject,
        "what": what,
        "choice": choice or None,
        "choice_label": label,
        "note": note,
        "requested_at": now.isoformat(),
        "audience": ["staff"],
    }
    subject = f"{who} asks for {label}"
    context: dict[str, Any] = {
        "msp": {"name": msp.name if msp else "", "currency": msp.currency if msp else "USD"},
        "client": {"name": client.name, "key": client.key} if client else None,
        "subject": subject,
        "body": "",
        "data": data,
        "links": {},
        "today": now.date(),
    }
    text, html = render_notice("block_request", context)
    try:
        with db.unit_of_work() as s:
            s.add(
                Notice(
                    client_id=notice.client_id,
                    kind="block_request",
                    dedupe_key=_request_key(notice.id),
                    to=staff_addresses(),
                    cc=[],
                    subject=subject[:300],
                    body_text=text,
                    body_html=html,
                    data=data,
                    state="waiting",
                    attempts=0,
                    created_at=now,
                )
            )
    except IntegrityError:  # the same link answered twice at once: the other one won
        asked = _already_asked(db, notice.id, name)
        if asked is not None:
            return asked
        raise
    return Page(
        200,
        "Thank you: request sent",
        f"We received your request for {label}. We will send the invoice shortly.",
        name,
        [("About", notice.subject)] + ([("Your note", note)] if note else []),
        tone="ok",
    )


# ------------------------------------------------------------------------------------------ quotes


def _quote_details(view: Any) -> list[tuple[str, str]]:
    return [
        ("For", view.client_name),
        ("Ticket", f"#{view.ticket} {view.title}"),
        ("Work", view.description),
        ("Price", money(view.amount, view.currency)),
    ]


def _quote_settled(db: Database, view: Any) -> Page:
    """A quote that takes no answer now: what was decided, and when, or why not."""
    if view.answer is not None:
        when = f" on {long_date(_local(db, view.answered_at))}" if view.answered_at else ""
        by = f" by {view.answered_by}" if view.answered_by else ""
        then = (
            "We are on it, and bill the work as quoted."
            if view.answer == "approved"
            else "We closed the ticket and will do nothing more on it."
        )
        return Page(
            409,
            "This quote was already answered",
            f"The quote for “{view.title}” was {view.answer}{by}{when}. {then}\n\n"
            "If you want to change your answer, reply to our e-mail.",
            view.msp_name,
            _quote_details(view),
            tone="info",
        )
    if view.superseded:
        return Page(
            409,
            "There is a newer quote",
            f"We sent a newer quote for “{view.title}”. Please answer it with the links in that e-mail.",
            view.msp_name,
            _quote_details(view),
            tone="warn",
        )
    status = view.ticket_status.replace("_", " ")
    return Page(
        409,
        "This quote was already settled",
        f"Ticket #{view.ticket} is {status}: the quote no longer waits for an answer. Reply to our e-mail if you "
        "have a question.",
        view.msp_name,
        _quote_details(view),
        tone="info",
    )


def _quote_page(db: Database, payload: dict[str, Any], name: str) -> Page:
    from tenure.desk.mail.quotes import quote_view  # the desk imports the notices: not at the top

    view = quote_view(db, int(payload.get("q") or 0))
    if view is None:
        return _gone(name)
    if view.answer is not None or view.superseded or view.ticket_status != "awaiting_approval":
        return _quote_settled(db, view)
    approve = payload.get("a") == "approve"
    return Page(
        200,
        f"{'Approve' if approve else 'Decline'} the quote: {view.title}",
        (
            "Confirm below and we start the work, billed as quoted."
            if approve
            else "Confirm below and we close the ticket without doing the work."
        ),
        view.msp_name,
        _quote_details(view),
        form={
            "button": "Approve the quote" if approve else "Decline the quote",
            "note": "A note for us (optional)",
            "choices": [],
            "choices_label": "",
        },
    )


def _quote_answer(db: Database, payload: dict[str, Any], form: dict[str, str], name: str) -> Page:
    from tenure.desk.mail.quotes import answer_quote

    approve = payload.get("a") == "approve"
    signer = str(payload.get("s") or "the client")
    recorded, view = answer_quote(
        db, int(payload.get("q") or 0), "approved" if approve else "declined", signer, form.get("note")
    )
    if view is None:
        return _gone(name)
    if not recorded:
        return _quote_settled(db, view)
    return Page(
        200,
        "Thank you: approved" if approve else "Thank you: declined",
        (
            f"We start on “{view.title}” and bill it as quoted. Our reference: ticket #{view.ticket}."
            if approve
            else f"We closed ticket #{view.ticket} and will not do this work."
        ),
        view.msp_name,
        _quote_details(view),
        tone="ok",
    )
