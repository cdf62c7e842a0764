"""The owner's pages for people and access: users and their roles (/settings/users), API tokens (/settings/tokens).

Both need `users.manage` (the owner) and call the same functions as `tenure user ...`, `tenure token ...` and
/api/v1/users, /api/v1/tokens. Forms post/redirect/get with a flash; a refused form is shown again (422, or
409 for a name taken or the last active owner) with what was typed, never a password, and the field marked.

A new token's secret is shown once: the answer to the POST is the tokens page itself (200, `no-store`) with
the secret in a box. It is never put in a redirect's URL nor in the flash cookie, so it is in no history,
log or later page.
"""

from collections.abc import Callable
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response

from tenure.accounts.models import ROLES
from tenure.accounts.service import create_token, list_tokens, revoke_token
from tenure.accounts.users import USER_ROLES, change_user, create_user, create_user_token, list_users
from tenure.db.engine import Database
from tenure.errors import Conflict, NotFound, TenureError, ValidationFailed
from tenure.web import forms
from tenure.web.clients import refused, status_of
from tenure.web.common import Gate, Who, redirect, show
from tenure.web.forms import Field, FormState
from tenure.web.words import words

PERMISSION = "users.manage"

ROUTES: list[tuple[str, str, str | None]] = [
    ("GET", "/settings/users", PERMISSION),
    ("POST", "/settings/users", PERMISSION),
    ("POST", "/settings/users/{name}/role", PERMISSION),
    ("POST", "/settings/users/{name}/password", PERMISSION),
    ("POST", "/settings/users/{name}/deactivate", PERMISSION),
    ("POST", "/settings/users/{name}/activate", PERMISSION),
    ("GET", "/settings/tokens", PERMISSION),
    ("POST", "/settings/tokens", PERMISSION),
    ("POST", "/settings/tokens/{name}/revoke", PERMISSION),
]

# the fields of the forms, so a refusal's `field: message` lands beside its field (web/forms.py)
USER_NEW = (
    Field("name", "name", required=True, hint="what they type to sign in; no spaces"),
    Field("role", "role", "select", USER_ROLES, required=True),
    Field("password", "password", required=True, hint="at least 10 characters"),
)
USER_ROLE = (Field("role", "role", "select", USER_ROLES, required=True),)
USER_PASSWORD = (Field("password", "new password", required=True),)
TOKEN_NEW = (
    Field("name", "name", required=True, hint="who or what uses it, e.g. alertmanager"),
    Field("role", "role", "select", ROLES, required=True),
    Field("user", "belongs to", "select", hint="never more rights than the user's; refused once they are deactivated"),
)


def _typed(fields: tuple[Field, ...], data: Any) -> dict[str, Any]:
    """What was typed, to show again: never a password (it would sit in the page's HTML)."""
    return {k: v for k, v in forms.typed(fields, data).items() if k != "password"}


def _refusal(name: str, fields: tuple[Field, ...], exc: TenureError, values: dict[str, Any], field: str,
             item: str | None = None) -> FormState:  # fmt: skip
    """A refused form: a ValidationFailed beside its fields; a conflict (a name taken, the last owner) beside
    `field`, the one that ran into what stands."""
    if isinstance(exc, Conflict):
        return FormState(name, values, {field: [str(exc)]}, message="not saved: see what is marked below", item=item)
    return refused(name, fields, exc, values, item=item)


def users_page(db: Callable[[], Database], request: Request, who: Who, state: FormState | None = None,
               status: int = 200) -> HTMLResponse:  # fmt: skip
    states = {"user-new": FormState("user-new", {"role": "technician"})}
    if state is not None:
        states[state.name] = state
    return show(
        request, who, "users.html", status_code=status, users=list_users(db()), roles=USER_ROLES, forms=states,
        refused=state,
    )  # fmt: skip


def tokens_page(db: Callable[[], Database], request: Request, who: Who, state: FormState | None = None,
                status: int = 200, created: dict[str, Any] | None = None) -> HTMLResponse:  # fmt: skip
    """The tokens page; `created` the token just made, whose secret this answer shows (once)."""
    people = [u.username for u in list_users(db()) if u.active]
    form = state or FormState("token-new", {"role": "readonly"})
    response = show(
        request, who, "tokens.html", status_code=status, tokens=list_tokens(db()), roles=ROLES, people=people,
        token_form=form, created=created,
    )  # fmt: skip
    response.headers["Cache-Control"] = "no-store"  # the page may hold a secret: never cached, nor replayed
    return response


def make_router(db: Callable[[], Database]) -> APIRouter:
    router = APIRouter(include_in_schema=False)
    gate = Gate(db)
    Manager = Annotated[Who, Depends(gate.page(PERMISSION))]
    Editor = Annotated[Who, Depends(gate.form(PERMISSION))]

    def known(name: str) -> str:
        """The user a form is about, or a 404 page (a user renamed or never there)."""
        if not any(u.username == name for u in list_users(db())):
            raise NotFound(f"no user {name!r}")
        return name

    @router.get("/settings/users", response_class=HTMLResponse)
    def users(request: Request, who: Manager) -> Response:
        return users_page(db, request, who)

    @router.post("/settings/users")
    def add_user(request: Request, who: Editor) -> Response:
        data = request.state.form
        name, role = str(data.get("name") or "").strip(), str(data.get("role") or "")
        try:
            made = who[0].act(create_user, db(), name, str(data.get("password") or ""), role)
        except (ValidationFailed, Conflict) as exc:
            state = _refusal("user-new", USER_NEW, exc, _typed(USER_NEW, data), "name")
            return users_page(db, request, who, state, status_of(exc))
        return redirect(f"/settings/users#user-{quote(made.username)}",
                        f"{made.username} added as {words(made.role)}: they can sign in now")  # fmt: skip

    def apply(request: Request, who: Who, name: str, form: str, fields: tuple[Field, ...], field: str,
              done: str, **what: Any) -> Response:  # fmt: skip
        """One change of a user (`what`: role, password or active); refused, the page again with its form."""
        try:
            who[0].act(change_user, db(), known(name), **what)
        except (ValidationFailed, Conflict) as exc:
            state = _refusal(form, fields, exc, _typed(fields, request.state.form), field, item=name)
            return users_page(db, request, who, state, status_of(exc))
        return redirect(f"/settings/users#user-{quote(name)}", done)

    @router.post("/settings/users/{name}/role")
    def role(request: Request, name: str, who: Editor) -> Response:
        new = str(request.state.form.get("role") or "")
        return apply(request, who, name, "user-role", USER_ROLE, "role", f"{name} is now {words(new)}", role=new)

    @router.post("/settings/users/{name}/password")
    def password(request: Request, name: str, who: Editor) -> Response:
        new = str(request.state.form.get("password") or "")
        done = f"{name}'s password changed: their sessions are closed"
        return apply(request, who, name, "user-password", USER_PASSWORD, "password", done, password=new)

    @router.post("/settings/users/{name}/deactivate")
    def deactivate(request: Request, name: str, who: Editor) -> Response:
        done = f"{name} deactivated: they cannot sign in, their sessions and tokens stop working"
        return apply(request, who, name, "user-active", (), "active", done, active=False)

    @router.post("/settings/users/{name}/activate")
    def activate(request: Request, name: str, who: Editor) -> Response:
        return apply(request, who, name, "user-active", (), "active", f"{name} may sign in again", active=True)

    @router.get("/settings/tokens", response_class=HTMLResponse)
    def tokens(request: Request, who: Manager) -> Response:
        return tokens_page(db, request, who)

    @router.post("/settings/tokens", response_class=HTMLResponse)
    def add_token(request: Request, who: Editor) -> Response:
        data = request.state.form
        name, role = str(data.get("name") or "").strip(), str(data.get("role") or "") or None
        user = str(data.get("user") or "").strip() or None
        try:
            if user is not None:
                secret, info = who[0].act(create_user_token, db(), name, role, user)
            else:
                secret, info = who[0].act(create_token, db(), name, role or "readonly")
        except TenureError as exc:
            problem = exc if isinstance(exc, ValidationFailed | Conflict) else ValidationFailed([f"role: {exc}"])
            state = _refusal("token-new", TOKEN_NEW, problem, _typed(TOKEN_NEW, data), "name")
            return tokens_page(db, request, who, state, status_of(problem))
        # the answer itself shows the secret: a redirect would have to carry it in a URL or a cookie
        return tokens_page(db, request, who, created=info.as_json() | {"token": secret})

    @router.post("/settings/tokens/{name}/revoke")
    def revoke(name: str, who: Editor) -> Response:
        try:
            who[0].act(revoke_token, db(), name)
        except NotFound as exc:
            return redirect("/settings/tokens", str(exc), error=True)
        return redirect("/settings/tokens", f"token {name} revoked: requests with it are refused from now on")

    return router
