"""Offboarding runs: the list, one run by phase, and the answers a person gives a step (done with a note,
retry, approve, skip with a reason) or the whole run (continue: do every step that is due now)."""

from collections.abc import Callable
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, Form, Path, Query, Request
from fastapi.responses import HTMLResponse, Response

from tenure.accounts.users import Principal
from tenure.db.engine import Database
from tenure.errors import Conflict, NotFound, TenureError, ValidationFailed
from tenure.offboarding import rules
from tenure.offboarding import service as offboarding
from tenure.web import queries
from tenure.web.common import MAX_ID, PAGE_SIZE, Gate, Who, redirect, show
from tenure.web.forms import Field, FormState, beside_fields, typed

# a step's answers: (verb, permission, the form field that carries its text)
ANSWERS = (
    ("done", "offboarding.work", "note"),
    ("retry", "offboarding.work", None),
    ("approve", "offboarding.decide", "note"),
    ("skip", "offboarding.decide", "reason"),
)

ROUTES: list[tuple[str, str, str | None]] = [
    ("GET", "/offboarding", "read"),
    ("GET", "/offboarding/{run}", "read"),
    *[("POST", f"/offboarding/{{run}}/{verb}", permission) for verb, permission, _ in ANSWERS],
    ("POST", "/offboarding/{run}/continue", "offboarding.work"),
    ("POST", "/offboarding/{run}/many", "offboarding.work"),
    ("POST", "/offboarding/{run}/skip-many", "offboarding.decide"),
    ("GET", "/clients/{key}/offboarding", "read"),
    ("POST", "/clients/{key}/offboarding", "offboarding.decide"),
]

# the answers as the client's page asks them (offboarding/rules.py validates them as it does the answers file)
START_FORM = (
    Field("end_of_service", "end of service", "date", required=True,
          hint="the last day of service: agreements end on it, and nothing the client pays for stops before it"),
    Field("reason", "reason", "select", rules.REASONS, required=True,
          hint="who ended the service: the client, or we"),
    Field("access", "access to the client's machines", "select", rules.ACCESS, required=True,
          hint="with no access, the agents stay behind, orphaned"),
    Field("agent_deployment", "how the agents were deployed", "select", rules.DEPLOYMENTS, required=True,
          hint="by Group Policy (with full access): one uninstall by GPO; otherwise one machine at a time"),
    Field("moving_to", "where the client goes", "select", rules.MOVING_TO, required=True,
          hint="the client's own IT or another MSP: name the new administrator below"),
    Field("new_contact_name", "new administrator's name", hint="the incoming MSP's or the client's administrator"),
    Field("new_contact_email", "new administrator's e-mail"),
    Field("delete_data", "all data may be deleted after the end of service", "check"),
    Field("security_account", "security vendor account", "select", rules.SECURITY_ACCOUNT, required=True,
          hint="close: the client stops using it (logs and alerts stop before the end date); keep: it moves on"),
    Field("stop_services_on", "stop paid services from", "date",
          hint="blank: the end of service; an earlier day only when the client asks for it sooner"),
    Field("closeout_date", "closeout session held on", "date",
          hint="seed 003: deactivation starts after the closeout session with the client"),
    Field("closeout_attended", "who attended", hint="names, separated by commas"),
    Field("closeout_notes", "notes of the session", "textarea", wide=True),
    Field("owner", "owner (activation project manager)", hint="blank: you"),
)  # fmt: skip


# the run page's answer to many steps at once: its fields, to put a refusal beside the one it names
BULK_FORM = (Field("device", "device"), Field("phase", "phase"), Field("note", "note"), Field("assignee", "assignee"))


def answers_of(form: Any) -> tuple[dict[str, Any], str | None]:
    """The answers document from the start form, and the owner; blanks left out, so the rules say what is
    missing exactly as for an answers file."""
    value = {f.name: str(form.get(f.name) or "").strip() for f in START_FORM if f.kind != "check"}
    answers: dict[str, Any] = {
        name: value[name]
        for name in ("end_of_service", "reason", "access", "agent_deployment", "moving_to", "security_account",
                     "stop_services_on")
        if value[name]
    }
    answers["delete_data"] = "delete_data" in form
    if value["new_contact_name"] or value["new_contact_email"]:
        answers["new_contact"] = {"name": value["new_contact_name"], "email": value["new_contact_email"] or None}
    if value["closeout_date"] or value["closeout_attended"] or value["closeout_notes"]:
        answers["closeout"] = {"date": value["closeout_date"] or None, "attended": value["closeout_attended"],
                               "notes": value["closeout_notes"] or None}
    return answers, value["owner"] or None


# a problem of the answers (`answers.new_contact.email: …`) beside the form's field
FIELD_OF = {"new_contact": "new_contact_name", "new_contact.name": "new_contact_name",
            "new_contact.email": "new_contact_email", "closeout": "closeout_date", "closeout.date": "closeout_date",
            "closeout.attended": "closeout_attended", "closeout.notes": "closeout_notes"}  # fmt: skip


def sorted_problems(problems: list[str]) -> tuple[dict[str, list[str]], list[str]]:
    per: dict[str, list[str]] = {}
    general: list[str] = []
    names = {f.name for f in START_FORM}
    for problem in problems:
        place, sep, message = problem.partition(": ")
        place = place.removeprefix("answers.")
        name = FIELD_OF.get(place, place)
        if sep and name in names:
            per.setdefault(name, []).append(message)
        else:
            general.append(problem)
    return per, general


def make_router(db: Callable[[], Database]) -> APIRouter:
    router = APIRouter(include_in_schema=False)
    gate = Gate(db)
    Read = Annotated[Who, Depends(gate.page("read"))]

    @router.get("/offboarding", response_class=HTMLResponse)
    def runs(
        request: Request,
        who: Read,
        offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
    ) -> HTMLResponse:
        return show(request, who, "runs.html", page=queries.runs_page(db(), limit=PAGE_SIZE, offset=offset))

    @router.get("/offboarding/{run}", response_class=HTMLResponse)
    def run(
        request: Request,
        run: Annotated[int, Path(ge=1, le=MAX_ID)],
        who: Read,
        phase: Annotated[int | None, Query(ge=1, le=7)] = None,
        offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
    ) -> HTMLResponse:
        return show(request, who, "run.html", run=queries.run_page(db(), run, phase, offset))

    def answer(run: int, verb: str, who: Principal, step: str, text: str | None) -> Response:
        back = f"/offboarding/{run}"
        try:
            _, message = who.act(offboarding.answer, db(), verb, queries.run_client(db(), run), step, text)
        except TenureError as exc:
            return redirect(back, str(exc), error=True)
        return redirect(back + f"#step-{quote(step)}", message)

    def step_answer(verb: str, permission: str, field: str | None) -> Callable[..., Response]:
        def endpoint(
            run: Annotated[int, Path(ge=1, le=MAX_ID)],
            who: Annotated[Who, Depends(gate.form(permission))],
            step: Annotated[str, Form(max_length=200)],
            note: Annotated[str, Form(max_length=2000)] = "",
            reason: Annotated[str, Form(max_length=2000)] = "",
        ) -> Response:
            text = {"note": note, "reason": reason}.get(field or "", "").strip() or None
            return answer(run, verb, who[0], step, text)

        endpoint.__name__ = f"offboarding_{verb}"
        return endpoint

    for verb, permission, field in ANSWERS:
        router.post(f"/offboarding/{{run}}/{verb}")(step_answer(verb, permission, field))

    @router.post("/offboarding/{run}/continue")
    def run_continue(
        run: Annotated[int, Path(ge=1, le=MAX_ID)],
        who: Annotated[Who, Depends(gate.form("offboarding.work"))],
    ) -> Response:
        back = f"/offboarding/{run}"
        try:
            status = who[0].act(offboarding.apply, db(), queries.run_client(db(), run), None)
        except TenureError as exc:
            return redirect(back, str(exc), error=True)
        return redirect(back, f"ran {status['ran']} step(s); the run is {status['state']}")

    @router.post("/offboarding/{run}/many")
    def many(
        request: Request,
        run: Annotated[int, Path(ge=1, le=MAX_ID)],
        who: Annotated[Who, Depends(gate.form("offboarding.work"))],
    ) -> Response:
        return bulk_answer(request, run, who, skip=False)

    @router.post("/offboarding/{run}/skip-many")
    def skip_many(
        request: Request,
        run: Annotated[int, Path(ge=1, le=MAX_ID)],
        who: Annotated[Who, Depends(gate.form("offboarding.decide"))],
    ) -> Response:
        return bulk_answer(request, run, who, skip=True)

    def bulk_answer(request: Request, run: int, who: Who, *, skip: bool) -> Response:
        """The run page's checkboxes, or a device's or a phase's steps, done (or skipped, or assigned) with
        one note; refused, the run page again (422) with what was typed and the boxes ticked."""
        form = request.state.form
        keys = tuple(str(k) for k in form.getlist("step") if str(k).strip())[:100_000]
        device = str(form.get("device") or "").strip() or None
        phase_text = str(form.get("phase") or "").strip()
        back = f"/offboarding/{run}"
        try:
            if phase_text and not phase_text.isdigit():
                raise ValidationFailed([f"phase: {phase_text!r} is not 1 to 7"])
            phase = int(phase_text) if phase_text else None
            # the checkboxes, unless a device or a phase was chosen instead
            chosen = offboarding.Selection(() if device or phase else keys, device, phase)
            if str(form.get("action") or "") == "assign":
                result = who[0].act(offboarding.assign, db(), run, chosen, str(form.get("assignee") or ""))
            else:
                verb = "skip" if skip else "done"
                result = who[0].act(offboarding.bulk, db(), verb, run, chosen, str(form.get("note") or ""))
        except TenureError as exc:
            if isinstance(exc, NotFound) and f"no offboarding run #{run}" in str(exc):
                raise
            values = {name: str(form.get(name) or "") for name in ("device", "phase", "note", "assignee")}
            values["step"] = list(keys)
            messages = [m.replace("reason: ", "note: ", 1) for m in getattr(exc, "problems", None) or [str(exc)]]
            per, general = beside_fields(messages, BULK_FORM)
            state = FormState("bulk", values, per, general, "nothing was changed: see what is marked")
            page = queries.run_page(db(), run, None, 0)
            return show(request, who, "run.html", 409 if isinstance(exc, Conflict) else 422, run=page, bulk=state)
        return redirect(back, result["message"])

    def start_page(request: Request, who: Who, key: str, state: FormState, status: int = 200) -> HTMLResponse:
        with db().reader() as s:
            queries.client_id(s, key)  # NotFound: no such client
        return show(request, who, "offboarding_start.html", status, key=key, spec=START_FORM, state=state)

    @router.get("/clients/{key}/offboarding", response_class=HTMLResponse)
    def start_form(request: Request, key: Annotated[str, Path(max_length=100)], who: Read) -> HTMLResponse:
        state = FormState("offboarding-start", {"reason": "client_cancelled", "access": "full",
                                                "agent_deployment": "unknown", "moving_to": "unknown",
                                                "security_account": "unknown", "owner": who[0].actor})
        return start_page(request, who, key, state)

    @router.post("/clients/{key}/offboarding", response_class=HTMLResponse)
    def start_run(
        request: Request,
        key: Annotated[str, Path(max_length=100)],
        who: Annotated[Who, Depends(gate.form("offboarding.decide"))],
    ) -> Response:
        form = request.state.form
        answers, owner = answers_of(form)
        try:
            status = who[0].act(offboarding.start, db(), key, answers, owner)
        except ValidationFailed as exc:
            per, general = sorted_problems(exc.problems)
            state = FormState("offboarding-start", typed(START_FORM, form), per, general,
                              message="The offboarding was not started: see the answers marked below.")
            return start_page(request, who, key, state, 422)
        except TenureError as exc:
            state = FormState("offboarding-start", typed(START_FORM, form), message=str(exc))
            return start_page(request, who, key, state, 409 if isinstance(exc, Conflict) else 422)
        return redirect(f"/offboarding/{status['run']}", f"offboarding run #{status['run']} started: {status['state']}")

    return router
