"""Specification of the doorbells that wake lume_sync's blocked callers and its loop."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lume_sync import _doorbell
from lume_sync._doorbell import Doorbell, EventFdDoorbell, SocketDoorbell

from .._profiles import examples

pytestmark = pytest.mark.timeout(30)

KINDS: list[Callable[[], Doorbell]] = [SocketDoorbell]
if hasattr(os, "eventfd"):
    KINDS.append(EventFdDoorbell)


@pytest.fixture(params=KINDS, ids=lambda kind: kind.__name__)
def bell(request: pytest.FixtureRequest) -> Iterator[Doorbell]:
    made: Doorbell = request.param()
    yield made
    made.close()


def test_a_wait_without_a_ring_times_out(bell: Doorbell) -> None:
    assert bell.wait(0.01) is False


def test_a_ring_before_the_wait_wakes_it_at_once(bell: Doorbell) -> None:
    bell.ring()

    assert bell.wait(10) is True


@given(rings=st.integers(min_value=1, max_value=5000))
@settings(max_examples=examples(20), deadline=None)
def test_any_number_of_rings_wakes_one_wait(rings: int) -> None:
    for kind in KINDS:
        bell = kind()
        for _ in range(rings):
            bell.ring()

        assert bell.wait(10) is True
        assert bell.wait(0) is False
        bell.close()


def test_clear_takes_back_the_rings(bell: Doorbell) -> None:
    bell.ring()
    bell.ring()
    bell.clear()
    bell.clear()  # nothing to take: no error

    assert bell.wait(0) is False


def test_a_ring_from_another_thread_wakes_a_waiting_thread(bell: Doorbell) -> None:
    waiting = threading.Event()
    woke: list[bool] = []

    def waiter() -> None:
        waiting.set()
        woke.append(bell.wait(30))

    thread = threading.Thread(target=waiter)
    thread.start()
    assert waiting.wait(10)
    bell.ring()
    thread.join(10)

    assert woke == [True]


def test_the_descriptor_turns_readable_when_rung(bell: Doorbell) -> None:
    import select

    assert select.select([bell.fileno()], [], [], 0)[0] == []
    bell.ring()
    assert select.select([bell.fileno()], [], [], 0)[0] == [bell.fileno()]


def test_ringing_a_closed_socket_bell_is_quiet() -> None:
    bell = SocketDoorbell()
    bell.close()

    bell.ring()


def test_calls_on_one_thread_get_distinct_bells_and_reuse_them() -> None:
    outer = _doorbell.borrow()
    inner = _doorbell.borrow()  # a call made while the outer one waits
    assert inner is not outer
    _doorbell.give_back(inner)
    _doorbell.give_back(outer)

    assert _doorbell.borrow() is outer
    assert _doorbell.borrow() is inner


def test_each_thread_has_its_own_bells() -> None:
    mine = _doorbell.borrow()
    _doorbell.give_back(mine)
    theirs: list[Doorbell] = []

    thread = threading.Thread(target=lambda: theirs.append(_doorbell.borrow()))
    thread.start()
    thread.join(10)

    assert theirs[0] is not mine
