"""The routes every object a client owns has: `/clients/{key}/{kind}` (`GET` the list, `POST` a new one) and
`/clients/{key}/{kind}/{item}` (`GET`, `PATCH` only the fields sent, `DELETE` where honest, else end, retire
or close). The bodies are the object's shape in the book; a `version` in the body, or `If-Match` with the
ETag a `GET` gave, refuses a change made on stale data (412)."""

from collections.abc import Sequence
from datetime import date as Date
from typing import Annotated, Any

from fastapi import APIRouter, Body, Header, Path, Query
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from tenure.api.common import KEY, WRITES, Api
from tenure.book import objects
from tenure.book.shapes import KINDS, Kind

ClientPath = Annotated[str, Path(max_length=100, pattern=KEY, description="The client's key.")]
ItemPath = Annotated[str, Path(max_length=100, description="The object's key (a contact's or rule's id).")]
IfMatch = Annotated[str | None, Header(alias="If-Match", description="The ETag a GET gave: refuse if it changed.")]
Patch = Annotated[dict[str, Any], Body(description="Only the fields that change, in the book's shape.")]


def tagged(document: dict[str, Any], status: int = 200) -> JSONResponse:
    """The object, with its version as the ETag."""
    headers = {"ETag": f'"{document["version"]}"'} if "version" in document else {}
    return JSONResponse(document, status_code=status, headers=headers)


def object_routes(api: Api, router: APIRouter, names: Sequence[str], permission: str, tag: str) -> None:
    for name in names:
        _routes(api, router, KINDS[name], permission, tag)


def _routes(api: Api, router: APIRouter, kind: Kind, permission: str, tag: str) -> None:
    db = api.db
    Read = api.principal("read")
    Writer = api.principal(permission)
    base, one = f"/clients/{{key}}/{kind.path}", f"/clients/{{key}}/{kind.path}/{{item}}"
    Shape: type[BaseModel] = kind.shape
    suffix = kind.name

    if kind.name != "devices":  # a client's devices are listed as a page, with their last check-in (clients.py)

        @api.route(router, "GET", base, "read", tags=[tag], responses=WRITES, name=f"list_{suffix}",
                   summary=f"A client's {kind.name}")  # fmt: skip
        def listing(key: ClientPath, _: Read) -> list[dict[str, Any]]:
            return objects.list_items(db(), key, kind.name)

    @api.route(router, "POST", base, permission, tags=[tag], status_code=201, responses=WRITES,
               name=f"add_{suffix}", summary=f"Add a {kind.label}")  # fmt: skip
    async def create(key: ClientPath, body: Shape, principal: Writer) -> JSONResponse:  # type: ignore[valid-type]
        data = body.model_dump(mode="json", exclude_unset=True)  # type: ignore[attr-defined]
        made = await run_in_threadpool(principal.act, objects.create_item, db(), key, kind.name, data)
        return tagged(made, 201)

    @api.route(router, "GET", one, "read", tags=[tag], responses=WRITES, name=f"get_{suffix}",
               summary=f"A {kind.label}")  # fmt: skip
    def read(key: ClientPath, item: ItemPath, _: Read) -> JSONResponse:
        return tagged(objects.get_item(db(), key, kind.name, item))

    @api.route(router, "PATCH", one, permission, tags=[tag], responses=WRITES, name=f"change_{suffix}",
               summary=f"Change a {kind.label}: only the fields sent")  # fmt: skip
    async def change(
        key: ClientPath,
        item: ItemPath,
        body: Patch,
        principal: Writer,
        if_match: IfMatch = None,
        effective: Annotated[
            Date | None,
            Query(description="An agreement already billed: the first day of its new money terms."),
        ] = None,
    ) -> JSONResponse:
        changed = await run_in_threadpool(
            principal.act, objects.patch_item, db(), key, kind.name, item, body, if_match, effective
        )
        return tagged(changed)

    @api.route(router, "DELETE", one, permission, tags=[tag], responses=WRITES, name=f"remove_{suffix}",
               summary=f"Delete a {kind.label} with no history; else end, retire or close it")  # fmt: skip
    async def remove(
        key: ClientPath,
        item: ItemPath,
        principal: Writer,
        end: Annotated[Date | None, Query(description="An agreement's last day (default today).")] = None,
    ) -> dict[str, Any]:
        return await run_in_threadpool(principal.act, objects.remove_item, db(), key, kind.name, item, end)
