"""Intake's quarantine beside the mapping rules (/settings/intake): what waits and why, a rule, a replay.

Every staff role reads the page; who may `inventory.edit` writes and removes mapping rules (the same
`book/objects.py` services as a client's tab and `/api/v1/mapping-rules`) and replays what waits (the same
`intake.service.replay` as `tenure intake replay`). An alert no client matched comes with a "Write a rule"
form filled in from its hostname, sender or labels; saving it can replay that payload at once. A refused
rule is shown again as it was typed, the field at fault marked.
"""

from collections.abc import Callable, Sequence
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, Response

from tenure import clock
from tenure.book import objects
from tenure.db.engine import Database
from tenure.errors import Conflict, NotFound, TenureError, ValidationFailed
from tenure.intake import service
from tenure.intake.service import Outcome
from tenure.web import forms, queries
from tenure.web.clients import refused, status_of
from tenure.web.common import MAX_ID, PAGE_SIZE, Gate, Who, redirect, show
from tenure.web.forms import Field, FormState

PAGE = "/settings/intake"
PERMISSION = "inventory.edit"
RULE_FIELDS = (Field("client", "client", required=True, hint="the client's key"), *forms.MAPPING_RULE)
# what the schema's refusal of a rule's field means, as a person writing one reads it
FIELD_WORDS = "one of hostname, sender, sender_domain, subject or label:NAME (letters, digits and _)"
# why a payload waits (intake.service `kind`), in words
WHY = {
    "unmatched": "No client matched it",
    "unreadable": "It could not be read",
    "failed": "It was read, then refused on the way in",
}

ROUTES: list[tuple[str, str, str | None]] = [
    ("GET", PAGE, "read"),
    ("POST", f"{PAGE}/rules", PERMISSION),
    ("POST", f"{PAGE}/rules/{{rule}}/remove", PERMISSION),
    ("POST", f"{PAGE}/replay", PERMISSION),
]


def _count(n: int, one: str, many: str | None = None) -> str:
    return f"{n} {one if n == 1 else (many or one + 's')}"


def replayed(outcomes: Sequence[Outcome], waiting: int) -> str:
    """A replay's flash: how many payloads went through, how many alerts a client now holds, what still waits."""
    payloads = len({o.payload for o in outcomes})
    placed = sum(1 for o in outcomes if o.client)
    return (
        f"replayed {_count(payloads, 'payload')}: {_count(placed, 'alert')} placed on a client; "
        f"{_count(waiting, 'payload')} still {'waits' if waiting == 1 else 'wait'} in quarantine"
    )


def _payload_id(raw: Any) -> int | None:
    text = str(raw or "").strip()
    return int(text) if text.isdigit() and 0 < int(text) <= MAX_ID else None


def _offset(raw: Any) -> int:
    text = str(raw or "")
    return min(int(text), 10_000_000) if text.isdigit() else 0


def intake_page(
    db: Callable[[], Database], request: Request, who: Who, offset: int = 0,
    state: FormState | None = None, status: int = 200,
) -> HTMLResponse:  # fmt: skip
    """The page; `state` a refused rule form to show again (its `item` the payload it was written from)."""
    items, total = service.quarantine_page(db(), PAGE_SIZE, offset)
    clients = [(v.key, v.name) for v in queries.all_views(db(), clock.today())]
    return show(
        request, who, "intake.html", status_code=status, rules=objects.list_all(db(), "mapping_rules"),
        page=queries.Page(items, total, True, PAGE_SIZE, offset), clients=clients, refusal=state, why=WHY,
        editor=who[0].may(PERMISSION),
    )  # fmt: skip


def make_router(db: Callable[[], Database]) -> APIRouter:
    router = APIRouter(include_in_schema=False)
    gate = Gate(db)
    Read = Annotated[Who, Depends(gate.page("read"))]
    Editor = Annotated[Who, Depends(gate.form(PERMISSION))]

    @router.get(PAGE, response_class=HTMLResponse)
    def page(request: Request, who: Read, offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0) -> Response:
        return intake_page(db, request, who, offset)

    @router.post(f"{PAGE}/rules")
    def add_rule(request: Request, who: Editor) -> Response:
        data = request.state.form
        typed = forms.typed(RULE_FIELDS, data) | {"replay": "replay" in data}
        client, field, pattern = (typed[name].strip() for name in ("client", "field", "pattern"))
        payload_id = _payload_id(data.get("payload"))
        payload = str(payload_id) if payload_id is not None else ""
        try:
            missing = forms.missing(RULE_FIELDS, typed)
            if len(pattern) > service.PATTERN_LENGTH:  # the table keeps no more: refused here, not cut
                missing.append(f"pattern: at most {service.PATTERN_LENGTH} characters")
            if missing:
                raise ValidationFailed(missing)
            made = who[0].act(objects.create_item, db(), client, "mapping_rules", {"field": field, "pattern": pattern})
        except NotFound:  # the only thing a new rule names that may not exist is its client
            unknown = ValidationFailed([f"client: no client {client!r}: type the key of one (the list suggests)"])
            state = refused("rule", RULE_FIELDS, unknown, typed, item=payload)
            return intake_page(db, request, who, _offset(data.get("offset")), state, 422)
        except (ValidationFailed, Conflict) as exc:
            state = refused("rule", RULE_FIELDS, exc, typed, item=payload)
            field_problems = state.problems.get("field", [])
            state.problems["field"] = [FIELD_WORDS if "should match pattern" in p else p for p in field_problems]
            if not state.problems["field"]:
                del state.problems["field"]
            return intake_page(db, request, who, _offset(data.get("offset")), state, status_of(exc))
        said = f"mapping rule {made['field']} = {made['pattern']!r} added for {client}"
        if not payload:
            return redirect(f"{PAGE}#rules", f"{said}: replay what waits to place what it matches")
        if not typed["replay"]:
            return redirect(f"{PAGE}#payload-{payload}", f"{said}: replay payload {payload} to place it")
        outcomes = who[0].act(service.replay, db(), [payload_id])
        return redirect(f"{PAGE}#waiting", f"{said}; {replayed(outcomes, service.quarantine_count(db()))}")

    @router.post(f"{PAGE}/rules/{{rule}}/remove")
    def remove_rule(rule: str, who: Editor) -> Response:
        client = objects.owner_of(db(), "mapping_rules", rule)  # or 404
        current = objects.get_item(db(), client, "mapping_rules", rule)
        try:
            who[0].act(objects.remove_item, db(), client, "mapping_rules", rule)
        except NotFound:
            raise
        except TenureError as exc:
            return redirect(f"{PAGE}#rules", str(exc), error=True)
        return redirect(
            f"{PAGE}#rules", f"mapping rule {current['field']} = {current['pattern']!r} of {client} removed"
        )

    @router.post(f"{PAGE}/replay")
    def replay(request: Request, who: Editor) -> Response:
        named = [i for i in map(_payload_id, request.state.form.getlist("payload")) if i is not None]
        try:
            outcomes = who[0].act(service.replay, db(), named or None)  # none named: "Replay all"
        except ValidationFailed as refused:  # replayed by someone else meanwhile, say
            return redirect(f"{PAGE}#waiting", "; ".join(refused.problems), error=True)
        if not outcomes:
            return redirect(f"{PAGE}#waiting", "nothing waits in quarantine")
        return redirect(f"{PAGE}#waiting", replayed(outcomes, service.quarantine_count(db())))

    return router
