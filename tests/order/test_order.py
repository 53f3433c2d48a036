"""The order: what intake decides once, kept as JSON by the job store, read back unchanged by a worker, and
refused (never guessed at) when another version of ltxserve made it."""

from __future__ import annotations

import pytest

from ltxserve.api.schemas import GenerationRequest
from ltxserve.order import ORDER_VERSION, ImageInput, Order, Task, UnsupportedOrder


def _order(**fields) -> Order:
    return GenerationRequest(prompt="a fox", resolution="1080p", aspect_ratio="9:16", duration=6, fps=50,
                             seed=9).to_order(price=300_000, **fields)


def test_a_request_becomes_an_order_in_output_terms_once():
    order = _order()
    assert (order.task, order.width, order.height, order.fps, order.num_frames, order.seed, order.price) == (
        Task.TEXT_TO_VIDEO, 1080, 1920, 50, 300, 9, 300_000)
    assert order.duration == 6.0
    assert order.version == ORDER_VERSION


def test_an_order_survives_the_job_store_unchanged():
    for order in (_order(), _order(image=ImageInput("image", 640, 360))):
        assert Order.from_json(order.to_json()) == order
    assert Order.from_json(_order(image=ImageInput("image", 640, 360)).to_json()).task is Task.IMAGE_TO_VIDEO


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"version": ORDER_VERSION + 1}, f"order version {ORDER_VERSION + 1} is not one this worker knows"),
        ({"version": None}, "order version None is not one this worker knows"),
        ({"task": "retake"}, "is malformed"),
        ({"width": None, "prompt": None, "images": [{"name": "image"}]}, "is malformed"),
    ],
)
def test_an_order_this_code_does_not_know_is_refused_not_guessed(change, message):
    data = {**_order().to_json(), **change}
    if "width" in change:
        del data["width"]
    with pytest.raises(UnsupportedOrder, match=message):
        Order.from_json(data)


def test_rows_queued_before_orders_existed_are_refused():
    with pytest.raises(UnsupportedOrder, match="version None"):
        Order.from_json(None)


def test_the_task_agrees_with_the_images():
    with pytest.raises(ValueError, match="image-to-video order has no first frame"):
        Order(prompt="x", width=64, height=64, fps=25, num_frames=25, seed=1, task=Task.IMAGE_TO_VIDEO)
    with pytest.raises(ValueError, match="text-to-video order has a first frame"):
        Order(prompt="x", width=64, height=64, fps=25, num_frames=25, seed=1, images=(ImageInput("image", 4, 4),))
