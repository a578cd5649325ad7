# The Python twin of `lock_woken_waiter_cancelled_passes_the_lock_on` in
# tests/sync_locks.rs (CPython's test_locks.py test_finished_waiter_cancelled
# and test_cancel_release_race).

from prelude import *

async def main():
    lock = asyncio.Lock()
    await lock.acquire()

    async def c(name):
        try:
            await lock.acquire()
        except asyncio.CancelledError:
            log(f"{name} cancelled: locked {lock.locked()}")
            raise
        log(f"{name} acquired")

    tb = asyncio.create_task(c("tb"))
    tc = asyncio.create_task(c("tc"))
    await asyncio.sleep(0)
    lock.release()
    tb.cancel()
    log(f"released to tb, then cancelled tb: locked {lock.locked()}")
    await asyncio.sleep(0)
    log(f"tb cancelled {tb.cancelled()}, tc done {tc.done()}")
    await asyncio.sleep(0)
    log(f"tc done {tc.done()}, locked {lock.locked()}, waiters {len(lock._waiters)}")

go(main)
