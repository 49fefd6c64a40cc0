"""The bounded hashing pool: work runs off the event loop, and a full pool refuses at once."""

from __future__ import annotations

import asyncio
import os
import threading

import pytest

from bastion.errors import LoginBusyError
from bastion.services.passwords import HASHING_NICE, HashingPool


def test_work_runs_off_the_event_loop() -> None:
    pool = HashingPool(workers=1, max_waiting=1)

    async def main() -> str:
        return await pool.run(lambda: threading.current_thread().name)

    try:
        assert asyncio.run(main()).startswith("bastion-pwd")
    finally:
        pool.close()


def test_full_pool_refuses_instead_of_queueing() -> None:
    pool = HashingPool(workers=1, max_waiting=1)
    release = threading.Event()

    async def main() -> None:
        blocked = [asyncio.ensure_future(pool.run(release.wait)) for _ in range(2)]
        await asyncio.sleep(0)
        with pytest.raises(LoginBusyError):
            await pool.run(lambda: None)
        release.set()
        await asyncio.gather(*blocked)

    try:
        asyncio.run(main())
    finally:
        pool.close()


@pytest.mark.skipif(not hasattr(os, "setpriority"), reason="no per-thread nice values here")
def test_hashing_threads_yield_the_cpu_to_request_handling() -> None:
    """A login storm competes for cores at a lower priority than the event loop."""
    pool = HashingPool(workers=1, max_waiting=1)

    def nice() -> int:
        return os.getpriority(os.PRIO_PROCESS, threading.get_native_id())

    async def main() -> int:
        return await pool.run(nice)

    try:
        assert asyncio.run(main()) >= min(nice() + HASHING_NICE, 19)
    finally:
        pool.close()
