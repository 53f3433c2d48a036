from __future__ import annotations

import base64
import io

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
