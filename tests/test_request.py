from __future__ import annotations

import base64
import io
import struct

import pytest
from PIL import Image

from ltxserve.errors import ImageRejected, InvalidRequest
from ltxserve.net.safe_fetch import SafeFetcher
from ltxserve.request import MAX_PROMPT_CHARS, GenerationRequest, decode_image, load_image, parse_request


def _fields(error: InvalidRequest) -> dict[str, str]:
    return {issue.field: issue.message for issue in error.details}


def test_defaults_follow_the_hosted_api():
    request = parse_request({"prompt": "  a fox  "})
    assert request.prompt == "a fox"
    assert (request.duration, request.resolution, request.generate_audio, request.image) == (8, "2k", True, None)
    assert (request.aspect_ratio, request.fps, request.seed) == ("16:9", 25, None)
    assert request.size == (2560, 1440)
    assert request.num_frames == 200


@pytest.mark.parametrize(
    ("resolution", "aspect_ratio", "size"),
    [
        ("1080p", "16:9", (1920, 1080)),
        ("2k", "16:9", (2560, 1440)),
        ("4k", "16:9", (3840, 2160)),
        ("4k", "9:16", (2160, 3840)),
        ("2k", "1:1", (1440, 1440)),
    ],
)
def test_resolution_and_aspect_give_the_output_size(resolution, aspect_ratio, size):
    assert GenerationRequest(prompt="x", resolution=resolution, aspect_ratio=aspect_ratio).size == size


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("prompt", "   ", "must not be empty"),
        ("prompt", "x" * (MAX_PROMPT_CHARS + 1), f"at most {MAX_PROMPT_CHARS}"),
        ("prompt", 5, "valid string"),
        ("duration", 7, "must be 6, 8 or 10"),
        ("duration", "8", "must be 6, 8 or 10"),
        ("resolution", "8k", "'1080p', '2k' or '4k'"),
        ("generate_audio", "yes", "valid boolean"),
        ("image", "file:///etc/passwd", "http(s) URL or a data:image"),
        ("image", "ftp://example.com/a.png", "http(s) URL"),
        ("image", "data:text/plain;base64,aGk=", "data:image"),
        ("seed", -1, "greater than or equal to 0"),
        ("seed", 2**32, "less than or equal to 4294967295"),
        ("seed", "12", "valid integer"),
        ("aspect_ratio", "4:3", "'16:9', '9:16' or '1:1'"),
        ("fps", 30, "must be 25 or 50"),
    ],
)
def test_each_invalid_field_is_named_with_what_to_fix(field, value, message):
    body = {"prompt": "a fox", field: value}
    with pytest.raises(InvalidRequest) as caught:
        parse_request(body)
    assert list(_fields(caught.value)) == [field]
    assert message in _fields(caught.value)[field]
    assert field in caught.value.message


def test_all_invalid_fields_are_reported_together_and_unknown_ones_are_named():
    with pytest.raises(InvalidRequest) as caught:
        parse_request({"duration": 9, "resolution": "720p", "negative_prompt": "blur", "steps": 30})
    fields = _fields(caught.value)
    assert set(fields) == {"prompt", "duration", "resolution", "negative_prompt", "steps"}
    assert fields["prompt"] == "is required"
    assert fields["steps"].startswith("unknown field; allowed: prompt, duration")


def test_a_body_that_is_not_an_object_is_refused():
    with pytest.raises(InvalidRequest) as caught:
        parse_request(["a fox"])
    assert _fields(caught.value) == {"body": "must be a JSON object"}


def test_seed_is_kept_or_drawn():
    assert GenerationRequest(prompt="x", seed=123).to_spec().seed == 123
    drawn = {GenerationRequest(prompt="x").to_spec().seed for _ in range(5)}
    assert len(drawn) > 1
    assert all(0 <= seed < 2**32 for seed in drawn)


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
