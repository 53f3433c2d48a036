"""The operator's API, behind the admin key: the same key and credit operations as the CLI."""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime
from decimal import Decimal
from typing import Annotated

from annotated_types import Ge, Gt, Le
from fastapi import APIRouter
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, WithJsonSchema, field_validator
from starlette.concurrency import run_in_threadpool

from ...billing import keys
from ...billing.prices import MAX_GRANT_DOLLARS, to_dollars, to_micro
from ...errors import FieldIssue, InvalidRequest
from ..deps import AdminAccess, ServicesDep
from ..errors import ERROR_RESPONSES
from ..schemas import plain_text

router = APIRouter(
    prefix="/admin",
    tags=["admin"],
    dependencies=[AdminAccess],
    responses={status: ERROR_RESPONSES[status] for status in (400, 401, 403, 404)},
)


MICRO_DOLLAR = 0.000001


def _not_a_boolean(value: object) -> object:
    # JSON Schema's integers include 12.0, which pydantic takes; true and false they do not include.
    if isinstance(value, bool):
        raise ValueError("must be an integer, not true or false")
    return value


# Last in an Annotated[int, <bounds>, NOT_BOOLEAN]: the bounds stay on the integer in the OpenAPI schema.
NOT_BOOLEAN = BeforeValidator(_not_a_boolean)


def _dollars_schema(minimum: float) -> WithJsonSchema:
    """Dollars as the API documents them: a JSON number, kept in whole micro-dollars (rounded half up)."""
    return WithJsonSchema({"type": "number", "minimum": minimum, "maximum": float(MAX_GRANT_DOLLARS),
                           "description": "US dollars; amounts are kept in whole micro-dollars, rounded half up"})


class KeyCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field("", max_length=200)
    scopes: list[keys.Scope] = Field(["ltx-2-fast"], description="What the key may do: the model, and 4k")
    credits: Annotated[Decimal, Field(ge=0, le=MAX_GRANT_DOLLARS), _dollars_schema(0)] = Decimal(0)
    rpm_limit: Annotated[int, Gt(0), Le(1_000_000), NOT_BOOLEAN] | None = Field(
        None, description="Requests a minute; default: the server's"
    )
    concurrency_limit: Annotated[int, Gt(0), Le(10_000), NOT_BOOLEAN] | None = Field(
        None, description="Generations at once; default: the server's"
    )
    priority: Annotated[int, Ge(-1000), Le(1000), NOT_BOOLEAN] = Field(
        0, description="Higher is claimed first; keys of equal priority take turns"
    )

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        return plain_text(value)

    @field_validator("scopes")
    @classmethod
    def _once_each(cls, value: list[str]) -> list[str]:
        return list(keys.check_scopes(value))


class KeyOut(BaseModel):
    id: str
    name: str
    prefix: str
    scopes: list[str]
    rpm_limit: int | None
    concurrency_limit: int | None
    created_at: datetime
    revoked_at: datetime | None
    priority: int
    credits: float | None = Field(None, description="Balance in US dollars")

    @classmethod
    def of(cls, info: keys.KeyInfo, balance: int | None = None) -> KeyOut:
        return cls(**asdict(info), credits=None if balance is None else float(to_dollars(balance)))


class CreatedKey(KeyOut):
    key: str = Field(description="The API key. Shown this once; only its hash is kept.")


class CreditsAdd(BaseModel):
    model_config = ConfigDict(extra="forbid")

    amount: Annotated[
        Decimal, Field(ge=Decimal(str(MICRO_DOLLAR)), le=MAX_GRANT_DOLLARS), _dollars_schema(MICRO_DOLLAR)
    ]


@router.post("/keys", status_code=201, response_model=CreatedKey, summary="Create an API key")
async def create_key(body: KeyCreate, services: ServicesDep) -> CreatedKey:
    new = await run_in_threadpool(
        lambda: keys.create_key(
            services.db,
            name=body.name,
            scopes=body.scopes,
            credits=body.credits,
            rpm_limit=body.rpm_limit,
            concurrency_limit=body.concurrency_limit,
            priority=body.priority,
        )
    )
    return CreatedKey(**KeyOut.of(new.info, to_micro(body.credits)).model_dump(), key=new.secret)


@router.get("/keys", response_model=list[KeyOut], summary="Every API key, with its balance")
async def list_keys(services: ServicesDep) -> list[KeyOut]:
    rows = await run_in_threadpool(keys.list_keys, services.db)
    return [KeyOut.of(info, balance) for info, balance in rows]


@router.post("/keys/{key_id}/revoke", response_model=KeyOut, summary="Revoke a key (401 from then on)")
async def revoke_key(key_id: str, services: ServicesDep) -> KeyOut:
    revoked = await run_in_threadpool(keys.revoke_key, services.db, key_id)
    services.keys.forget(revoked.id)
    return KeyOut.of(revoked)


@router.post("/keys/{key_id}/credits", response_model=KeyOut, summary="Add credits to a key")
async def add_credits(key_id: str, body: CreditsAdd, services: ServicesDep) -> KeyOut:
    try:
        balance = await run_in_threadpool(keys.add_credits, services.db, key_id, body.amount, "admin API")
    except ValueError as exc:
        raise InvalidRequest([FieldIssue("amount", str(exc))]) from None
    info = await run_in_threadpool(keys.find_key, services.db, key_id)
    return KeyOut.of(info, balance)
