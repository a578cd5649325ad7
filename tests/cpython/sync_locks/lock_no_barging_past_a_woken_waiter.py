# The Python twin of `lock_no_barging_past_a_woken_waiter` in tests/sync_locks.rs.

from prelude import *

async def main():
    lock = asyncio.Lock()
    order = []
    await lock.acquire()

    async def waiter():
        async with lock:
            order.append("waiter")
            log("waiter has the lock")
            await asyncio.sleep(1)

    t = asyncio.create_task(waiter())
    await asyncio.sleep(0)
    lock.release()
    log(f"released: locked {lock.locked()}, waiters {len(lock._waiters)}")
    async with lock:
        order.append("main")
        log("main has the lock")
    await t
    return order

go(main)
