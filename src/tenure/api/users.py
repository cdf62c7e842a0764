"""REST API v1: people who sign in (users and their roles) and API tokens; the owner's (`users.manage`).

The same functions as `tenure user ...` and `tenure token ...` (accounts/users.py, accounts/service.py), so
the API refuses what the command line refuses: a short password, an unknown role, a name taken (409), the
last active owner demoted or deactivated (409). A refusal names the field at fault (`invalid-params`), a
409 too. No answer carries a password hash or a token's hash; a new token's secret is in the answer to
its POST, once, and nowhere else.
"""

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from tenure.accounts.service import TokenInfo, create_token, list_tokens, revoke_token
from tenure.accounts.users import UserInfo, change_user, create_user, create_user_token, list_users
from tenure.api.common import TEXT, WRITES, Api, Limit, Offset, PageMeta, page
from tenure.api.problems import problem
from tenure.errors import Conflict
from tenure.web import queries

UserRole = Literal["owner", "technician", "bookkeeper", "readonly"]  # accounts/users.py USER_ROLES
TokenRole = Literal["owner", "technician", "bookkeeper", "readonly", "intake"]  # accounts/models.py ROLES
Name = Annotated[str, Path(min_length=1, max_length=100, description="The user's name (what they sign in with).")]
TokenName = Annotated[str, Path(min_length=1, max_length=100, description="The token's name.")]


class UserOut(BaseModel):
    name: str
    role: str
    active: bool
    created_at: str | None = Field(description="When the user was created, if the change log still says.")
    last_sign_in_at: str | None = Field(description="The newest sign-in whose session is still kept, if any.")


class UserPage(PageMeta):
    users: list[UserOut]


class UserIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=100, pattern=TEXT, description="What they sign in with; no spaces.")
    role: UserRole
    password: str = Field(max_length=1024, pattern=TEXT, description="At least 10 characters; stored hashed.")


class UserPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    role: UserRole | None = None
    active: bool | None = Field(None, description="false: they cannot sign in, their sessions end, tokens refused.")
    password: str | None = Field(None, max_length=1024, pattern=TEXT, description="A new one: their sessions end.")


class TokenOut(BaseModel):
    name: str
    role: str
    user: str | None = Field(description="The user it belongs to: never more rights than theirs, refused once off.")
    prefix: str = Field(description="The start of the token, to recognise it (never the secret).")
    created_at: str
    last_used_at: str | None
    revoked_at: str | None


class NewToken(TokenOut):
    token: str = Field(description="The secret, shown this once: it is stored only as a hash.")


class TokenPage(PageMeta):
    tokens: list[TokenOut]


class TokenIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=100, pattern=TEXT, description="Who or what uses it.")
    role: TokenRole | None = Field(None, description="Default: the user's role, or readonly for a token of nobody.")
    user: str | None = Field(None, min_length=1, max_length=100, pattern=TEXT, description="The user it belongs to.")


def user_json(u: UserInfo) -> dict[str, Any]:
    return {
        "name": u.username,
        "role": u.role,
        "active": u.active,
        "created_at": u.created_at.isoformat() if u.created_at else None,
        "last_sign_in_at": u.last_sign_in_at.isoformat() if u.last_sign_in_at else None,
    }


def token_json(t: TokenInfo) -> dict[str, Any]:
    return t.as_json()


def slice_of(name: str, rows: list[dict[str, Any]], limit: int, offset: int) -> dict[str, Any]:
    """A page of a short list the service returns whole (users, tokens: tens, not thousands)."""
    return page(name, queries.Page(rows[offset : offset + limit], len(rows), True, limit, offset))


def conflict_on(field: str, exc: Conflict) -> JSONResponse:
    """A 409 that names its field, as a 422 does: which part of the request ran into what stands."""
    return problem(409, str(exc), **{"invalid-params": [{"name": field, "in": "body", "reason": str(exc)}]})


def router(api: Api) -> APIRouter:
    router, route = api.router()
    db = api.db
    Manager = api.principal("users.manage")

    @route("GET", "/users", "users.manage", tags=["users"], response_model=UserPage,
           summary="Users: their roles, whether they may sign in, when created and last signed in")  # fmt: skip
    def users(_: Manager, limit: Limit = 100, offset: Offset = 0) -> dict[str, Any]:
        return slice_of("users", [user_json(u) for u in list_users(db())], limit, offset)

    @route("POST", "/users", "users.manage", tags=["users"], status_code=201, response_model=UserOut,
           responses=WRITES, summary="Add a user who signs in with a role and a password")  # fmt: skip
    def add_user(body: UserIn, principal: Manager) -> Any:
        try:
            made = principal.act(create_user, db(), body.name, body.password, body.role)
        except Conflict as exc:
            return conflict_on("name", exc)
        return user_json(made)

    @route("PATCH", "/users/{name}", "users.manage", tags=["users"], response_model=UserOut, responses=WRITES,
           summary="Change a user's role, deactivate or reactivate them, set a new password")  # fmt: skip
    def change(name: Name, body: UserPatch, principal: Manager) -> Any:
        try:
            changed = principal.act(change_user, db(), name, body.role, body.active, body.password)
        except Conflict as exc:  # the last active owner: demoted or deactivated
            return conflict_on("active" if body.active is False else "role", exc)
        return user_json(changed)

    @route("GET", "/tokens", "users.manage", tags=["users"], response_model=TokenPage,
           summary="API tokens, revoked ones too (never a secret)")  # fmt: skip
    def tokens(_: Manager, limit: Limit = 100, offset: Offset = 0) -> dict[str, Any]:
        return slice_of("tokens", [token_json(t) for t in list_tokens(db())], limit, offset)

    @route("POST", "/tokens", "users.manage", tags=["users"], status_code=201, response_model=NewToken,
           responses=WRITES, summary="Create a token: its secret is in this answer, once")  # fmt: skip
    def add_token(body: TokenIn, principal: Manager) -> Any:
        try:
            if body.user is not None:
                secret, info = principal.act(create_user_token, db(), body.name, body.role, body.user)
            else:
                secret, info = principal.act(create_token, db(), body.name, body.role or "readonly")
        except Conflict as exc:  # a live token of that name
            return conflict_on("name", exc)
        return token_json(info) | {"token": secret}

    @route("DELETE", "/tokens/{name}", "users.manage", tags=["users"], response_model=TokenOut, responses=WRITES,
           summary="Revoke a live token: every request with it is refused from now on")  # fmt: skip
    def revoke(name: TokenName, principal: Manager) -> dict[str, Any]:
        return token_json(principal.act(revoke_token, db(), name))

    return router
