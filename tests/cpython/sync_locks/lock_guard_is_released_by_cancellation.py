# The Python twin of `lock_guard_is_released_by_cancellation` in
# tests/sync_locks.rs.

from prelude import *

async def main():
    lock = asyncio.Lock()

    async def holder():
        async with lock:
            log("holder has the lock")
            await asyncio.sleep(10)

    async def next_one():
        async with lock:
            log("next_one has the lock")

    t1 = asyncio.create_task(holder())
    t2 = asyncio.create_task(next_one())
    await asyncio.sleep(1)
    t1.cancel()
    outcomes = await asyncio.gather(t1, t2, return_exceptions=True)
    log(f"outcomes {[ex(r) if isinstance(r, BaseException) else r for r in outcomes]}")
    log(f"locked {lock.locked()}")

go(main)
