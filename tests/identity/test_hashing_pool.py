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


def _nice() -> int:
    return os.getpriority(os.PRIO_PROCESS, threading.get_native_id())


@pytest.mark.skipif(not hasattr(os, "setpriority"), reason="no per-thread nice values here")
def test_hashing_yields_the_cpu_but_steps_that_hold_locks_do_not() -> None:
    """A login storm's hashes compete for cores below request handling; its transactions run
    at normal priority, so a lock is never held by a thread the kernel puts last."""
    pool = HashingPool(workers=1, max_waiting=1)

    async def main() -> tuple[int, int]:
        with pool.admission():
            return await pool.hash(_nice), await pool.step(_nice)

    try:
        hashing, stepping = asyncio.run(main())
        assert hashing >= min(_nice() + HASHING_NICE, 19)
        assert stepping == _nice()
    finally:
        pool.close()


def test_one_admission_covers_every_step_of_a_login() -> None:
    pool = HashingPool(workers=1, max_waiting=0)

    async def main() -> None:
        with pool.admission():
            await pool.step(lambda: None)
            await pool.hash(lambda: None)
            with pytest.raises(LoginBusyError), pool.admission():
                pass

    try:
        asyncio.run(main())
    finally:
        pool.close()
