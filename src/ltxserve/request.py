"""The generation request every entry point shares (CLI, HTTP), and its translation to a RenderSpec."""

from __future__ import annotations

import base64
import binascii
import io
import re
import secrets
from typing import Annotated, Any, Literal

from PIL import Image, ImageCms, ImageOps, UnidentifiedImageError
from pydantic import BaseModel, ConfigDict, Field, StrictBool, ValidationError, field_validator

from .engine.spec import RenderSpec
from .errors import FieldIssue, ImageRejected, InvalidRequest
from .net.safe_fetch import FetchFailed, FetchRefused, SafeFetcher

MAX_PROMPT_CHARS = 5000
MAX_SEED = 2**32 - 1

# Short side in pixels; 16:9 and 9:16 put it on the height or the width, 1:1 on both.
SHORT_SIDE = {"1080p": 1080, "2k": 1440, "4k": 2160}
_DATA_URI = re.compile(r"^data:image/(png|jpeg|jpg|webp|gif|bmp);base64,", re.IGNORECASE)
_HTTP_URL = re.compile(r"^https?://[^/?#\s]+", re.IGNORECASE)

Duration = Literal[6, 8, 10]
Resolution = Literal["1080p", "2k", "4k"]
AspectRatio = Literal["16:9", "9:16", "1:1"]
Fps = Literal[25, 50]


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


class GenerationRequest(BaseModel):
    """Body of POST /v1/ltx-2-fast: the hosted API's fields, then ltxserve's optional extras."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    prompt: Annotated[str, Field(description=f"What to show; 1 to {MAX_PROMPT_CHARS} characters")]
    duration: Annotated[Duration, Field(description="Seconds of video")] = 8
    resolution: Annotated[Resolution, Field(description="1080p 1920x1080, 2k 2560x1440, 4k 3840x2160")] = "2k"
    generate_audio: Annotated[StrictBool, Field(description="Add a synchronized AAC audio track")] = True
    image: Annotated[
        str | None,
        Field(description="First frame: an http(s) URL or a data:image/...;base64, URI (image-to-video)"),
    ] = None
    seed: Annotated[
        int | None,
        Field(strict=True, ge=0, le=MAX_SEED, description="Same seed and request, same model: identical file"),
    ] = None
    aspect_ratio: Annotated[AspectRatio, Field(description="16:9 landscape, 9:16 portrait, 1:1 square")] = "16:9"
    fps: Annotated[Fps, Field(description="Frames per second")] = 25

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

    @property
    def size(self) -> tuple[int, int]:
        short = SHORT_SIDE[self.resolution]
        long = short * 16 // 9
        return {"16:9": (long, short), "9:16": (short, long), "1:1": (short, short)}[self.aspect_ratio]

    @property
    def num_frames(self) -> int:
        return self.duration * self.fps

    def to_spec(self, image: Image.Image | None = None) -> RenderSpec:
        width, height = self.size
        return RenderSpec(
            prompt=self.prompt,
            width=width,
            height=height,
            fps=self.fps,
            num_frames=self.num_frames,
            seed=self.seed if self.seed is not None else secrets.randbelow(MAX_SEED + 1),
            audio=self.generate_audio,
            image=image,
        )


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


def rendering_detail(resolution: str, refine_max_pixels: int | None) -> str:
    """How a resolution is rendered, in words for the price list: 4k is refined at half size by default."""
    height = SHORT_SIDE[resolution]
    width = height * 16 // 9
    if refine_max_pixels is None or width * height <= refine_max_pixels:
        return f"{width}x{height}, refined at full size"
    # Two x2 upsamples: the model's full size is on a 128 grid, and stage 2 refines at half of it.
    refine_w, refine_h = (-(-side // 128) * 64 for side in (width, height))
    return (
        f"{width}x{height}, refined at {refine_w}x{refine_h} and upsampled x2 in latent space: about "
        f"{height // 2}p detail, and an image-to-video first frame is not reproduced exactly"
    )


def parse_request(data: Any) -> GenerationRequest:
    """Validate a JSON-like body; every invalid field is reported at once."""
    if not isinstance(data, dict):
        raise InvalidRequest([FieldIssue("body", "must be a JSON object")])
    try:
        return GenerationRequest.model_validate(data)
    except ValidationError as exc:
        raise InvalidRequest([field_issue(dict(error)) for error in exc.errors()]) from None


def decode_image(data: bytes, max_pixels: int) -> Image.Image:
    try:
        with Image.open(io.BytesIO(data)) as probe:
            width, height = probe.size
            if width * height > max_pixels:
                raise ImageRejected(f"{width}x{height} is more than {max_pixels} pixels")
            probe.verify()
        opened = Image.open(io.BytesIO(data))
        opened.load()
        # As the reference's `decode_image`: upright as the camera meant it, and in sRGB.
        image = _to_srgb(ImageOps.exif_transpose(opened))
    except (UnidentifiedImageError, OSError, SyntaxError, Image.DecompressionBombError) as exc:
        raise ImageRejected(f"is not a readable image ({exc.__class__.__name__})") from None
    return image.convert("RGB")


def _to_srgb(image: Image.Image) -> Image.Image:
    profile = image.info.get("icc_profile")
    if not profile:
        return image
    try:
        source = ImageCms.ImageCmsProfile(io.BytesIO(profile))
        if image.mode not in ("RGB", "CMYK", "L"):
            image = image.convert("RGB")
        converted = ImageCms.profileToProfile(image, source, ImageCms.createProfile("sRGB"), outputMode="RGB")
        return converted if converted is not None else image
    except (ImageCms.PyCMSError, OSError, ValueError):
        return image  # a broken profile: use the pixels as they are, as a browser would


def image_bytes(value: str, fetcher: SafeFetcher) -> bytes:
    """The request's `image` as bytes: a data URI decoded, or a URL fetched under the address rules."""
    if value[:5].lower() == "data:":
        encoded = value.split(",", 1)[1]
        if len(encoded) * 3 // 4 > fetcher.max_bytes:
            raise ImageRejected(f"the data URI holds more than {fetcher.max_bytes} bytes")
        try:
            return base64.b64decode(encoded, validate=True)
        except (binascii.Error, ValueError):
            raise ImageRejected("the data URI is not valid base64") from None
    try:
        return fetcher.get(value, content_type_prefix="image/").body
    except FetchRefused as exc:
        raise ImageRejected(f"URL refused: {exc}") from None
    except FetchFailed as exc:
        raise ImageRejected(f"could not fetch the URL: {exc}") from None


def load_image(value: str, fetcher: SafeFetcher, max_pixels: int) -> Image.Image:
    return decode_image(image_bytes(value, fetcher), max_pixels)
