"""``harness.kube.each_concurrently``: the worker pool behind the bench's creates and its apiserver
write floor (``AsyncKube.create_many``, ``bench/floors.py``)."""

from __future__ import annotations

import asyncio

from harness.kube import each_concurrently


async def test_every_item_once_in_order_never_more_than_concurrency_at_a_time() -> None:
    started: list[int] = []
    in_flight = peak = 0

    async def work(item: int) -> None:
        nonlocal in_flight, peak
        started.append(item)
        in_flight += 1
        peak = max(peak, in_flight)
        await asyncio.sleep(0.001 * (item % 3))
        in_flight -= 1

    await each_concurrently(range(20), work, concurrency=4)
    assert started == list(range(20))
    assert peak == 4


async def test_a_slow_item_holds_up_no_other() -> None:
    """The first item waits for the last: a pool that worked in batches of ``concurrency`` (or one
    item at a time) would never reach it."""
    last_done = asyncio.Event()

    async def work(item: int) -> None:
        if item == 0:
            await last_done.wait()
        elif item == 9:
            last_done.set()

    await asyncio.wait_for(each_concurrently(range(10), work, concurrency=2), timeout=5)


async def test_more_workers_than_items() -> None:
    done: list[str] = []

    async def work(item: str) -> None:
        done.append(item)

    await each_concurrently(iter(["a", "b"]), work, concurrency=32)
    assert done == ["a", "b"]
