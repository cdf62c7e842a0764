"""Log in and out. The log-in form has no session yet, so it checks a double-submit cookie for CSRF; a
session is a random secret in an HttpOnly cookie (accounts/users.py keeps its hash)."""

import secrets
from collections.abc import Callable
from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, Response

from tenure.accounts.users import LIFETIME, BadCredentials, TooManyAttempts, any_user, csrf_ok, log_in, log_out
from tenure.db.engine import Database
from tenure.web.common import LOGIN_CSRF_COOKIE, SESSION_COOKIE, Gate, Who, redirect, render, safe_next

ROUTES: list[tuple[str, str, str | None]] = [
    ("GET", "/login", None),
    ("POST", "/login", None),
    ("POST", "/logout", "read"),
]


def make_router(db: Callable[[], Database]) -> APIRouter:
    router = APIRouter(include_in_schema=False)
    gate = Gate(db)

    def login_page(request: Request, status: int = 200, error: str | None = None, username: str = "") -> HTMLResponse:
        token = secrets.token_urlsafe(24)
        response = render(
            request,
            "login.html",
            status_code=status,
            login_csrf=token,
            error=error,
            username=username,
            next=safe_next(request.query_params.get("next")),
            first_run=not any_user(db()),
        )
        response.set_cookie(
            LOGIN_CSRF_COOKIE,
            token,
            httponly=True,
            samesite="strict",
            secure=request.url.scheme == "https",
            path="/login",
        )
        return response

    @router.get("/login")
    def login_form(request: Request) -> Response:
        if gate.signed_in(request) is not None:
            return redirect(safe_next(request.query_params.get("next")))
        return login_page(request)

    @router.post("/login")
    def login(
        request: Request,
        username: Annotated[str, Form(max_length=100)] = "",
        password: Annotated[str, Form(max_length=1024)] = "",
        csrf: Annotated[str, Form(max_length=200)] = "",
        next: Annotated[str, Form(max_length=2000)] = "/",
    ) -> Response:
        if not csrf_ok(request.cookies.get(LOGIN_CSRF_COOKIE), csrf):
            return login_page(request, 403, "the log-in form expired: try again", username)
        ip = request.client.host if request.client else "unknown"
        try:
            opened = log_in(db(), username, password, ip, request.headers.get("user-agent"))
        except TooManyAttempts as exc:
            refused = login_page(request, 429, str(exc), username)
            refused.headers["Retry-After"] = str(exc.retry_after)
            return refused
        except BadCredentials as exc:
            return login_page(request, 401, str(exc), username)
        request.state.actor = opened.principal.actor
        response = redirect(safe_next(next))
        response.set_cookie(
            SESSION_COOKIE,
            opened.secret,
            max_age=int(LIFETIME.total_seconds()),
            httponly=True,
            samesite="lax",
            secure=request.url.scheme == "https",
            path="/",
        )
        response.delete_cookie(LOGIN_CSRF_COOKIE, path="/login")
        return response

    @router.post("/logout")
    def logout(request: Request, who: Annotated[Who, Depends(gate.form("read"))]) -> Response:
        log_out(db(), request.cookies.get(SESSION_COOKIE))
        response = redirect("/login")
        response.delete_cookie(SESSION_COOKIE, path="/")
        return response

    return router
