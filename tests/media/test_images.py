"""Images in: fetched or read from a data URI, decoded once as the reference decodes them, and kept as their
pixels for the worker."""

from __future__ import annotations

import base64
import io
import struct
from dataclasses import replace

import pytest
from PIL import Image

from ltxserve.api.schemas import parse_request
from ltxserve.errors import ImageRejected
from ltxserve.media.images import decode_image, load_image, pack_pixels, unpack_pixels
from ltxserve.net.safe_fetch import SafeFetcher


def _png(width=32, height=24) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (200, 30, 40)).save(buffer, format="PNG")
    return buffer.getvalue()


def _fetcher(**kwargs) -> SafeFetcher:
    return SafeFetcher(max_bytes=kwargs.pop("max_bytes", 1 << 20), timeout_s=2, **kwargs)


def test_a_data_uri_image_is_decoded():
    uri = "data:image/png;base64," + base64.b64encode(_png()).decode()
    request = parse_request({"prompt": "x", "image": uri})
    image = load_image(request.image, _fetcher(), max_pixels=10_000)
    assert image.size == (32, 24)
    assert image.mode == "RGB"
    assert image.getpixel((0, 0)) == (200, 30, 40)


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ("not base64!!", "not valid base64"),
        (base64.b64encode(b"plain text, not pixels").decode(), "not a readable image"),
    ],
)
def test_a_bad_data_uri_is_an_image_error(payload, message):
    with pytest.raises(ImageRejected, match=message) as caught:
        load_image("data:image/png;base64," + payload, _fetcher(), max_pixels=10_000)
    assert caught.value.details[0].field == "image"


def test_a_data_uri_over_the_size_limit_is_refused_before_decoding():
    uri = "data:image/png;base64," + base64.b64encode(_png(200, 200)).decode()
    with pytest.raises(ImageRejected, match="more than 100 bytes"):
        load_image(uri, _fetcher(max_bytes=100), max_pixels=10**6)


def test_an_image_with_too_many_pixels_is_refused():
    with pytest.raises(ImageRejected, match="32x24 is more than 500 pixels"):
        decode_image(_png(), max_pixels=500)


def _s15(value: float) -> bytes:
    return struct.pack(">i", round(value * 65536))


def _linear_rgb_profile() -> bytes:
    """A minimal ICC v2 display profile: sRGB's primaries with a linear tone curve (gamma 1.0)."""

    def xyz(x: float, y: float, z: float) -> bytes:
        return b"XYZ " + bytes(4) + _s15(x) + _s15(y) + _s15(z)

    curve = b"curv" + bytes(4) + struct.pack(">IH", 1, 0x0100)
    name = b"linear sRGB\0"
    tags = [
        (b"desc", b"desc" + bytes(4) + struct.pack(">I", len(name)) + name + bytes(4 + 4 + 2 + 1 + 67)),
        (b"wtpt", xyz(0.9642, 1.0, 0.8249)),
        (b"rXYZ", xyz(0.4361, 0.2225, 0.0139)),
        (b"gXYZ", xyz(0.3851, 0.7169, 0.0971)),
        (b"bXYZ", xyz(0.1431, 0.0606, 0.7141)),
        (b"rTRC", curve),
        (b"gTRC", curve),
        (b"bTRC", curve),
        (b"cprt", b"text" + bytes(4) + b"none\0"),
    ]
    offset = 128 + 4 + 12 * len(tags)
    table = data = b""
    for signature, tag in tags:
        padded = tag + bytes(-len(tag) % 4)
        table += signature + struct.pack(">II", offset + len(data), len(padded))
        data += padded
    header = (
        struct.pack(">I", offset + len(data)) + bytes(4) + struct.pack(">I", 0x02100000) + b"mntrRGB XYZ " + bytes(12)
        + b"acsp" + bytes(28) + _s15(0.9642) + _s15(1.0) + _s15(0.8249) + bytes(48)
    )
    return header + struct.pack(">I", len(tags)) + table + data


def test_an_image_is_turned_upright_as_its_exif_orientation_says():
    """As the reference's decode_image: a phone photo stored sideways is conditioned on upright."""
    image = Image.new("RGB", (60, 20), (200, 30, 30))
    image.paste((30, 30, 200), (0, 0, 10, 20))  # a blue band on the stored image's left
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to display"
    buffer = io.BytesIO()
    image.save(buffer, "PNG", exif=exif.tobytes())
    upright = decode_image(buffer.getvalue(), max_pixels=10_000)
    assert upright.size == (20, 60)
    assert upright.getpixel((10, 2))[2] > 150  # the band is now on top


def test_an_image_with_a_colour_profile_is_converted_to_srgb():
    buffer = io.BytesIO()
    Image.new("RGB", (4, 4), (128, 128, 128)).save(buffer, "PNG", icc_profile=_linear_rgb_profile())
    assert decode_image(buffer.getvalue(), max_pixels=100).getpixel((0, 0)) == (188, 188, 188)
    broken = io.BytesIO()
    Image.new("RGB", (4, 4), (128, 128, 128)).save(broken, "PNG", icc_profile=b"not a profile")
    assert decode_image(broken.getvalue(), max_pixels=100).getpixel((0, 0)) == (128, 128, 128)


def test_the_decoded_pixels_the_worker_gets_are_the_ones_intake_decoded():
    decoded = decode_image(_png(33, 17), max_pixels=10_000)
    reference, kept = pack_pixels(decoded, "image")
    assert (reference.name, reference.width, reference.height, reference.frame) == ("image", 33, 17, 0)
    assert len(kept) < 33 * 17 * 3  # compressed
    again = unpack_pixels(reference, kept)
    assert again.mode == "RGB" and again.tobytes() == decoded.tobytes()
    with pytest.raises(ValueError, match="holds 1683 bytes, not 1734 for 34x17 RGB"):
        unpack_pixels(replace(reference, width=34), kept)
