"""A long-running process freezes its start-up heap and then collects only on real growth."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from bastion.heap import YOUNG_THRESHOLD, freeze_startup_heap


@pytest.fixture
def restored_collector() -> Iterator[None]:
    before = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*before)


@pytest.mark.usefixtures("restored_collector")
def test_freeze_moves_the_heap_out_of_reach_and_raises_only_the_young_threshold() -> None:
    gc.set_threshold(700, 7, 9)
    freeze_startup_heap()
    assert gc.get_freeze_count() > 0
    assert gc.get_threshold() == (YOUNG_THRESHOLD, 7, 9)


@pytest.mark.usefixtures("restored_collector")
def test_objects_in_flight_no_longer_trigger_young_collections() -> None:
    freeze_startup_heap()
    collections: list[int] = []

    def count(phase: str, info: dict[str, int]) -> None:
        if phase == "start" and info["generation"] == 0:
            collections.append(1)

    gc.callbacks.append(count)
    try:
        # Like 50 requests in flight, each holding some containers, then answered: more live
        # objects than CPython's default threshold of 700, all freed by reference counting.
        for _ in range(200):
            in_flight = [{"request": n, "headers": [n, n]} for n in range(1500)]
            del in_flight
    finally:
        gc.callbacks.remove(count)
    assert collections == []
