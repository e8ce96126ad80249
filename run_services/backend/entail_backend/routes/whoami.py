"""Who the caller is: the API key's id, tenant and scopes (the web app's sign-in)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends
from pydantic import BaseModel, ConfigDict

from entail.auth import ApiKey

from ..deps import authenticate

router = APIRouter(tags=["keys"])


class WhoAmIOut(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"id": "dev", "tenant": "dev", "scopes": ["admin"]}]}
    )
    id: str
    tenant: str
    scopes: list[str]


@router.get("/v1/whoami", response_model=WhoAmIOut)
async def whoami(key: Annotated[ApiKey, Depends(authenticate)]) -> WhoAmIOut:
    """The presented key's id, tenant and scopes; 401 for a missing, unknown or
    revoked key. Any valid key may ask, whatever its scopes."""
    return WhoAmIOut(**key.public())
