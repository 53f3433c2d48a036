"""The generation request's HTTP shapes: validation, every invalid field named, and the order it becomes."""

from __future__ import annotations

import pytest

from ltxserve.api.schemas import GenerationRequest, parse_request
from ltxserve.errors import InvalidRequest
from ltxserve.order import Task
from ltxserve.order.vocabulary import MAX_PROMPT_CHARS


def _fields(error: InvalidRequest) -> dict[str, str]:
    return {issue.field: issue.message for issue in error.details}


def test_defaults_follow_the_hosted_api():
    request = parse_request({"prompt": "  a fox  "})
    assert request.prompt == "a fox"
    assert (request.duration, request.resolution, request.generate_audio, request.image) == (8, "2k", True, None)
    assert (request.aspect_ratio, request.fps, request.seed) == ("16:9", 25, None)
    order = request.to_order(price=0)
    assert (order.width, order.height) == (2560, 1440)
    assert order.num_frames == 200
    assert (order.task, order.fps, order.audio, order.images) == (Task.TEXT_TO_VIDEO, 25, True, ())


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
    order = GenerationRequest(prompt="x", resolution=resolution, aspect_ratio=aspect_ratio).to_order(price=0)
    assert (order.width, order.height) == size


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
    assert GenerationRequest(prompt="x", seed=123).to_order(price=0).seed == 123
    drawn = {GenerationRequest(prompt="x").to_order(price=0).seed for _ in range(5)}
    assert len(drawn) > 1
    assert all(0 <= seed < 2**32 for seed in drawn)
