"""The generation request's HTTP shapes (Segmind's /v1 body, and /v2's with a webhook), validated, and
turned into the one Order a worker carries out (`to_order`, once per request)."""

from __future__ import annotations

import re
import secrets
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StrictBool, ValidationError, field_validator

from ..errors import FieldIssue, InvalidRequest
from ..order import ImageInput, Order, Task
from ..order.vocabulary import (
    DEFAULT_ASPECT_RATIO,
    DEFAULT_DURATION,
    DEFAULT_FPS,
    DEFAULT_RESOLUTION,
    MAX_PROMPT_CHARS,
    MAX_SEED,
    RESOLUTIONS,
    AspectRatio,
    Duration,
    Fps,
    Resolution,
    output_size,
)

_DATA_URI = re.compile(r"^data:image/(png|jpeg|jpg|webp|gif|bmp);base64,", re.IGNORECASE)
_HTTP_URL = re.compile(r"^https?://[^/?#\s]+", re.IGNORECASE)


def plain_text(value: str) -> str:
    """Refuse what JSON can carry but no tokenizer, database or URL can take: a NUL character, or half of a
    UTF-16 surrogate pair ("\ud800" with nothing after it)."""
    if "\x00" in value:
        raise ValueError("must not contain a NUL character (\\u0000)")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ValueError(f"is not valid Unicode text: a lone surrogate at character {exc.start}") from None
    return value


def _sizes() -> str:
    return ", ".join(f"{name} {'x'.join(map(str, output_size(name, '16:9')))}" for name in RESOLUTIONS)


class GenerationRequest(BaseModel):
    """Body of POST /v1/ltx-2-fast: the hosted API's fields, then ltxserve's optional extras."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    prompt: Annotated[str, Field(description=f"What to show; 1 to {MAX_PROMPT_CHARS} characters")]
    duration: Annotated[Duration, Field(description="Seconds of video")] = DEFAULT_DURATION
    resolution: Annotated[Resolution, Field(description=_sizes())] = DEFAULT_RESOLUTION
    generate_audio: Annotated[StrictBool, Field(description="Add a synchronized AAC audio track")] = True
    image: Annotated[
        str | None,
        Field(description="First frame: an http(s) URL or a data:image/...;base64, URI (image-to-video)"),
    ] = None
    seed: Annotated[
        int | None,
        Field(strict=True, ge=0, le=MAX_SEED, description="Same seed and request, same model: identical file"),
    ] = None
    aspect_ratio: Annotated[AspectRatio, Field(description="16:9 landscape, 9:16 portrait, 1:1 square")] = (
        DEFAULT_ASPECT_RATIO
    )
    fps: Annotated[Fps, Field(description="Frames per second")] = DEFAULT_FPS

    @field_validator("prompt")
    @classmethod
    def _prompt(cls, value: str) -> str:
        value = plain_text(value).strip()
        if not value:
            raise ValueError("must not be empty")
        if len(value) > MAX_PROMPT_CHARS:
            raise ValueError(f"must be at most {MAX_PROMPT_CHARS} characters, got {len(value)}")
        return value

    @field_validator("image")
    @classmethod
    def _image(cls, value: str | None) -> str | None:
        if value is None:
            return None
        value = plain_text(value).strip()
        if _DATA_URI.match(value) or _HTTP_URL.match(value):
            return value
        raise ValueError("must be an http(s) URL or a data:image/<png|jpeg|webp|gif|bmp>;base64, URI")

    def to_order(self, *, price: int, image: ImageInput | None = None) -> Order:
        """The order for this request: sizes in pixels and frames, the seed drawn now if none was sent.
        `image`: the decoded `image`, as the job store keeps it."""
        width, height = output_size(self.resolution, self.aspect_ratio)
        return Order(
            task=Task.IMAGE_TO_VIDEO if image is not None else Task.TEXT_TO_VIDEO,
            prompt=self.prompt,
            width=width,
            height=height,
            fps=self.fps,
            num_frames=self.duration * self.fps,
            seed=self.seed if self.seed is not None else secrets.randbelow(MAX_SEED + 1),
            audio=self.generate_audio,
            price=price,
            images=(image,) if image is not None else (),
        )

    def as_accepted(self, order: Order) -> dict[str, Any]:
        """The request as its record echoes it: as validated, with the seed the order drew; the image is not
        echoed (it may be megabytes)."""
        return self.model_copy(update={"seed": order.seed, "image": None}).model_dump(mode="json")


class AsyncGenerationRequest(GenerationRequest):
    """Body of POST /v2/ltx-2-fast: the same request, and where to POST the outcome."""

    webhook_url: Annotated[
        str | None,
        Field(max_length=2048, description="An http(s) URL that gets a signed POST when the request ends"),
    ] = None

    @field_validator("webhook_url")
    @classmethod
    def _webhook_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        value = plain_text(value).strip()
        if not _HTTP_URL.match(value):
            raise ValueError("must be an http(s) URL")
        return value

    def generation(self) -> GenerationRequest:
        return GenerationRequest.model_validate(self.model_dump(exclude={"webhook_url"}))


def field_issue(error: dict[str, Any]) -> FieldIssue:
    """One pydantic error as the field and sentence a client sees. FastAPI prefixes body fields with "body"."""
    loc = list(error["loc"])
    if loc[:1] == ["body"]:
        loc = loc[1:]
    if error["type"] == "json_invalid":
        return FieldIssue("body", f"is not valid JSON ({error.get('ctx', {}).get('error', 'parse error')})")
    if error["type"] in ("model_attributes_type", "dict_type") and not loc:
        return FieldIssue("body", "must be a JSON object")
    field = ".".join(str(part) for part in loc) or "body"
    if error["type"] == "extra_forbidden":
        allowed = ", ".join(GenerationRequest.model_fields)
        return FieldIssue(field, f"unknown field; allowed: {allowed} (and webhook_url on /v2)")
    if error["type"] == "missing":
        return FieldIssue(field, "is required")
    message = error["msg"].removeprefix("Value error, ").replace("Input should be", "must be")
    return FieldIssue(field, message)


def parse_request(data: Any) -> GenerationRequest:
    """Validate a JSON-like body; every invalid field is reported at once."""
    if not isinstance(data, dict):
        raise InvalidRequest([FieldIssue("body", "must be a JSON object")])
    try:
        return GenerationRequest.model_validate(data)
    except ValidationError as exc:
        raise InvalidRequest([field_issue(dict(error)) for error in exc.errors()]) from None
