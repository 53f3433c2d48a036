"""The order: what a worker is to make, decided once at intake and carried unchanged to the engine.

Intake turns a request, whatever its HTTP shape, into one Order: the task, the output's exact size, rate and
length, the seed, the price, and references to the media the job store holds for it. The job store keeps
its JSON; a worker reads it back with `Order.from_json` and hands it to the engine, which plans from it.
Nothing here knows HTTP, billing rules or tensors.

Every order carries ORDER_VERSION. A fleet is upgraded one worker at a time, so old and new workers share
a queue: a worker that meets a version it does not know refuses that job (UnsupportedOrder) instead of
guessing what it means. A new field that older workers may safely ignore keeps the version; one that
changes what must be made raises it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from enum import StrEnum
from typing import Any

ORDER_VERSION = 1


class UnsupportedOrder(ValueError):
    """An order this code cannot carry out: made by another version of ltxserve."""


class Task(StrEnum):
    TEXT_TO_VIDEO = "text-to-video"
    IMAGE_TO_VIDEO = "image-to-video"


@dataclass(frozen=True)
class ImageInput:
    """An image the job store holds for the order, as the pixels intake decoded (media.images.pack_pixels),
    and the output frame it conditions."""

    name: str  # its key among the job's stored media
    width: int
    height: int
    frame: int = 0


@dataclass(frozen=True)
class Order:
    """A clip to make, in output terms: the engine delivers exactly this size, rate and length."""

    prompt: str
    width: int
    height: int
    fps: int
    num_frames: int
    seed: int
    task: Task = Task.TEXT_TO_VIDEO
    audio: bool = True
    price: int = 0  # micro-dollars reserved for it
    images: tuple[ImageInput, ...] = field(default=())
    version: int = ORDER_VERSION

    def __post_init__(self) -> None:
        if (self.task is Task.IMAGE_TO_VIDEO) != (self.first_frame is not None):
            raise ValueError(f"a {self.task} order has {'a' if self.first_frame else 'no'} first frame")

    @property
    def duration(self) -> float:
        return self.num_frames / self.fps

    @property
    def first_frame(self) -> ImageInput | None:
        return next((image for image in self.images if image.frame == 0), None)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: Any) -> Order:
        """The order a job store row holds. UnsupportedOrder if it is not one this code knows: a version it
        does not know (or none: queued before orders had one), or fields that do not fit it."""
        version = data.get("version") if isinstance(data, dict) else None
        if version != ORDER_VERSION:
            raise UnsupportedOrder(
                f"order version {version} is not one this worker knows (it knows {ORDER_VERSION}): the request "
                "was accepted by another version of ltxserve"
            )
        try:
            values = {item.name: data[item.name] for item in fields(cls) if item.name in data}
            values["task"] = Task(values["task"])
            values["images"] = tuple(ImageInput(**image) for image in values.get("images", ()))
            return cls(**values)
        except (KeyError, TypeError, ValueError) as exc:
            raise UnsupportedOrder(f"order version {version} is malformed ({exc.__class__.__name__}: {exc})") from None
