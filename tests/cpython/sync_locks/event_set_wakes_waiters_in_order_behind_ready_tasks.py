# The Python twin of `event_set_wakes_waiters_in_order_behind_ready_tasks` in
# tests/sync_locks.rs (CPython's test_locks.py EventTests.test_wait).

from prelude import *

async def main():
    ev = asyncio.Event()
    result = []

    async def c(n):
        await ev.wait()
        result.append(n)

    t1 = asyncio.create_task(c(1))
    t2 = asyncio.create_task(c(2))
    await asyncio.sleep(0)
    log(f"waiting: {result}, waiters {len(ev._waiters)}")
    t3 = asyncio.create_task(c(3))
    ev.set()
    await asyncio.sleep(0)
    log(f"after set: {result}, waiters {len(ev._waiters)}")
    log(f"done: {t1.done()} {t2.done()} {t3.done()}")
    return result

go(main)
