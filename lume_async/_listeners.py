"""Listening without being kept alive: a receiver's listener that holds its object weakly.

A ``WebhookReceiver`` keeps its listeners for as long as it lives, often the life of the
process; an event stream or a client that subscribed and was then dropped without being closed
must still be collected, and leave the receiver's listeners when it is.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from types import MethodType
from typing import Any, final

__all__ = ["listen_weakly"]

Listener = Callable[[Any], None]


@final
class _WeakListener:
    """Calls a bound method for as long as its object lives (it does not keep it so)."""

    __slots__ = ("_method",)

    def __init__(self, method: MethodType) -> None:
        self._method = weakref.WeakMethod(method)

    def __call__(self, event: Any) -> None:
        method = self._method()
        if method is not None:
            method(event)


def listen_weakly(
    add_listener: Callable[[Listener], Callable[[], None]], method: Listener
) -> Callable[[], None]:
    """Subscribe ``method`` (a bound method) with ``add_listener`` without keeping its object
    alive; it is unsubscribed once its object is collected. Returns the unsubscribe function."""
    assert isinstance(method, MethodType)
    unsubscribe = add_listener(_WeakListener(method))
    weakref.finalize(method.__self__, unsubscribe)
    return unsubscribe
