"""The order (what a worker is to make, decided once at intake) and the vocabulary requests are made of."""

from .order import ORDER_VERSION, ImageInput, Order, Task, UnsupportedOrder

__all__ = ["ORDER_VERSION", "ImageInput", "Order", "Task", "UnsupportedOrder"]
