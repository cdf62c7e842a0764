"""REST API v1: the change log of an object (`/changes?object=&key=`): who, when, before, after."""

from typing import Annotated, Any

from fastapi import APIRouter, Query

from tenure.api.common import NOT_FOUND, Api, Limit, Offset, new_router
from tenure.book.history import OBJECTS, history


def router(api: Api) -> APIRouter:
    router = new_router()
    db = api.db
    Read = api.principal("read")

    @api.route(router, "GET", "/changes", "read", tags=["history"], responses=NOT_FOUND,
               summary="What happened to an object, newest first (a client's: everything it holds too)")  # fmt: skip
    def changes(
        _: Read,
        object: Annotated[str, Query(max_length=40, description=f"One of: {', '.join(OBJECTS)}.")],
        key: Annotated[str, Query(max_length=100, description="Its key (a number for tickets, contacts, …).")],
        limit: Limit = 100,
        offset: Offset = 0,
    ) -> dict[str, Any]:
        return history(db(), object, key, limit, offset)

    return router
