"""Prices and balances, as the hosted API answers them."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from ...billing import keys
from ...billing.prices import to_dollars
from ...engine.spec import Geometry
from ...order.vocabulary import DURATIONS, output_size
from ..deps import MODELS, CurrentKey, ServicesDep
from ..errors import ERROR_RESPONSES

router = APIRouter(tags=["account"])


class Credits(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    credits: float = Field(description="Spendable balance in US dollars")
    free_credits: float = Field(alias="free-credits", description="Promotional balance; ltxserve grants none")


class PriceRow(BaseModel):
    resolution: str
    duration: int
    price: float = Field(description="US dollars for one clip, audio included")


class Pricing(BaseModel):
    currency: str = "USD"
    per_second: dict[str, dict[str, float]] = Field(description="Dollars per second of output, by model and resolution")
    clips: dict[str, list[PriceRow]] = Field(description="Every request's price, by model")
    rendering: dict[str, str] = Field(
        description="How each resolution is rendered (16:9 sizes; portrait and square alike)"
    )


def rendering_detail(resolution: str, refine_max_pixels: int | None) -> str:
    """How a resolution is rendered, in words for the price list: 4k is refined at half size by default."""
    width, height = output_size(resolution, "16:9")
    geometry = Geometry.of_output(width, height, 1, refine_max_pixels=refine_max_pixels)
    if geometry.refine_scale == 1:
        return f"{width}x{height}, refined at full size"
    return (
        f"{width}x{height}, refined at {geometry.refine_width}x{geometry.refine_height} and upsampled x2 in latent "
        f"space: about {height // 2}p detail, and an image-to-video first frame is not reproduced exactly"
    )


@router.get("/v1/pricing", response_model=Pricing, summary="The price table")
def pricing(services: ServicesDep) -> Pricing:
    per_second = {res: float(to_dollars(micro)) for res, micro in services.prices.per_second.items()}
    clips = [
        PriceRow(resolution=res, duration=duration, price=float(to_dollars(services.prices.price(res, duration))))
        for res in per_second
        for duration in DURATIONS
    ]
    rendering = {res: rendering_detail(res, services.settings.refine_max_pixels) for res in per_second}
    return Pricing(
        per_second=dict.fromkeys(MODELS, per_second), clips=dict.fromkeys(MODELS, clips), rendering=rendering
    )


@router.get(
    "/v1/get-user-credits",
    response_model=Credits,
    response_model_by_alias=True,
    summary="The key's balance",
    responses={401: ERROR_RESPONSES[401]},
)
async def get_user_credits(key: CurrentKey, services: ServicesDep) -> Credits:
    balance = await run_in_threadpool(keys.balance, services.db, key.id)
    return Credits.model_validate({"credits": float(to_dollars(balance)), "free-credits": 0.0})
