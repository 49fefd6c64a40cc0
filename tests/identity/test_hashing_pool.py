"""The bounded hashing pool: work runs off the event loop, and a full pool refuses at once."""

from __future__ import annotations

import asyncio
import threading

import pytest

from bastion.errors import LoginBusyError
from bastion.services.passwords import HashingPool


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
