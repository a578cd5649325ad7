# The Python twin of `event_waiter_cancelled_before_or_after_set_leaves_the_others`
# in tests/sync_locks.rs (CPython's test_locks.py EventTests.test_wait_cancel).

from prelude import *

async def main():
    ev = asyncio.Event()

    async def c(name):
        await ev.wait()
        log(f"{name} woke")
        return name

    t1 = asyncio.create_task(c("t1"))
    t2 = asyncio.create_task(c("t2"))
    t3 = asyncio.create_task(c("t3"))
    await asyncio.sleep(0)
    t1.cancel()
    await asyncio.sleep(0)
    log(f"t1 cancelled before set: waiters {len(ev._waiters)}")
    ev.set()
    t2.cancel()
    results = await asyncio.gather(t1, t2, t3, return_exceptions=True)
    log(f"outcomes {[ex(r) if isinstance(r, BaseException) else r for r in results]}")
    log(f"waiters {len(ev._waiters)}")

go(main)
