# The Python twin of `lock_waiter_cancelled_before_wake_up_leaves_the_queue`
# in tests/sync_locks.rs (CPython's test_locks.py LockTests.test_cancel_race).

from prelude import *

async def main():
    lock = asyncio.Lock()
    await lock.acquire()

    async def c(name):
        await lock.acquire()
        log(f"{name} acquired")
        lock.release()

    t1 = asyncio.create_task(c("t1"))
    t2 = asyncio.create_task(c("t2"))
    await asyncio.sleep(0)
    t1.cancel()
    lock.release()
    log(f"cancelled t1 and released: locked {lock.locked()}, waiters {len(lock._waiters)}")
    await asyncio.sleep(0)
    log(f"t1 cancelled {t1.cancelled()}, waiters {len(lock._waiters)}")
    await t2
    log(f"t2 done: locked {lock.locked()}")

go(main)
