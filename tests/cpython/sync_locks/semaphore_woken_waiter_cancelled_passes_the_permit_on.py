# The Python twin of `semaphore_woken_waiter_cancelled_passes_the_permit_on` in
# tests/sync_locks.rs (CPython's test_locks.py test_acquire_hang).

from prelude import *

async def main():
    sem = asyncio.Semaphore(0)

    async def c(name):
        try:
            await sem.acquire()
        except asyncio.CancelledError:
            log(f"{name} cancelled: value {sem._value}")
            raise
        log(f"{name} got a permit")

    t1 = asyncio.create_task(c("t1"))
    t2 = asyncio.create_task(c("t2"))
    await asyncio.sleep(0)
    sem.release()
    log(f"released to t1: value {sem._value}, locked {sem.locked()}")
    t1.cancel()
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    log(f"t1 cancelled {t1.cancelled()}, t2 done {t2.done()}, value {sem._value}, locked {sem.locked()}")

go(main)
