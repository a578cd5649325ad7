# The Python twin of `semaphore_permit_is_given_back_by_errors_and_cancellation`
# in tests/sync_locks.rs.

from prelude import *

async def main():
    sem = asyncio.BoundedSemaphore(2)

    async def fails():
        async with sem:
            await asyncio.sleep(1)
            raise Boom("fails")

    async def cancelled():
        async with sem:
            await asyncio.sleep(10)

    async def third():
        async with sem:
            log(f"third has a permit: value {sem._value}")

    t1 = asyncio.create_task(fails())
    t2 = asyncio.create_task(cancelled())
    t3 = asyncio.create_task(third())
    await asyncio.sleep(2)
    log(f"value {sem._value}")
    t2.cancel()
    outcomes = await asyncio.gather(t1, t2, t3, return_exceptions=True)
    log(f"outcomes {[ex(r) if isinstance(r, BaseException) else r for r in outcomes]}")
    log(f"value {sem._value}")

go(main)
