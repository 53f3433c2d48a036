"""Images in: a request's `image` fetched or read from its data URI, decoded once at intake as the reference
prepares images (upright, sRGB, RGB), and kept for the worker as those pixels.

The worker gets the decoded pixels, not the client's file: it never parses untrusted media, and the image is
decoded exactly once, at intake, where a bad one is a 400 before anything is charged.
"""

from __future__ import annotations

import base64
import binascii
import io
import zlib

from PIL import Image, ImageCms, ImageOps, UnidentifiedImageError

from ..errors import ImageRejected
from ..net.safe_fetch import FetchFailed, FetchRefused, SafeFetcher
from ..order import ImageInput

# Pixels compress fast at level 1; higher levels cost intake far more time than they save space.
_PIXEL_COMPRESSION = 1


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


def pack_pixels(image: Image.Image, name: str, frame: int = 0) -> tuple[ImageInput, bytes]:
    """A decoded image as the order's reference to it and the bytes the job store keeps: its RGB pixels,
    compressed losslessly."""
    rgb = image if image.mode == "RGB" else image.convert("RGB")
    return ImageInput(name, rgb.width, rgb.height, frame), zlib.compress(rgb.tobytes(), _PIXEL_COMPRESSION)


def unpack_pixels(reference: ImageInput, data: bytes) -> Image.Image:
    """The image `pack_pixels` kept, as it was decoded."""
    raw = zlib.decompress(data)
    expected = reference.width * reference.height * 3
    if len(raw) != expected:
        raise ValueError(f"image {reference.name!r} holds {len(raw)} bytes, not {expected} for "
                         f"{reference.width}x{reference.height} RGB")
    return Image.frombytes("RGB", (reference.width, reference.height), raw)
