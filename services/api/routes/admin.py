"""Administrators issue and revoke distributors' API keys (ADMIN_TOKEN)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Path, status

from pantau.subscriptions import store
from services.api.deps import Connection, require_admin
from services.api.schemas import KeyCreated, KeyIn, KeyOut, errors

router = APIRouter(
    prefix="/v1/admin", tags=["admin"], dependencies=[Depends(require_admin)], responses=errors(400, 401, 422, 429, 503)
)


@router.post("/keys", status_code=status.HTTP_201_CREATED, response_model=KeyCreated)
async def create_key(body: KeyIn, conn: Connection) -> KeyCreated:
    """Issue an API key for a distributor. The key is in this answer only; store it now."""
    new, key = await store.create_key(conn, body.name)
    return KeyCreated(**key.__dict__, api_key=new.key)


@router.get("/keys", response_model=list[KeyOut])
async def list_keys(conn: Connection) -> list[KeyOut]:
    return [KeyOut(**key.__dict__) for key in await store.list_keys(conn)]


@router.delete("/keys/{key_id}", response_model=KeyOut, responses=errors(404))
async def revoke_key(key_id: Annotated[str, Path(pattern=r"^[0-9a-f]{12}$")], conn: Connection) -> KeyOut:
    """Revoke a key: it stops authenticating and its subscriptions stop receiving alerts."""
    key = await store.revoke_key(conn, key_id)
    if key is None:
        raise HTTPException(404, f"no API key with id {key_id!r}")
    return KeyOut(**key.__dict__)
