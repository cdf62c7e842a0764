"""REST API v1: who is calling (`/me`)."""

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel

from tenure.api.common import (
    Api,
)


class Me(BaseModel):
    user: str | None
    role: str
    via: str
    token: str | None
    permissions: list[str]


def router(api: Api) -> APIRouter:
    router, route = api.router()
    Read = api.principal("read")

    @route("GET", "/me", "read", tags=["accounts"], response_model=Me, summary="The caller: user, role, rights")
    def me(principal: Read) -> dict[str, Any]:
        return principal.as_json()

    return router
