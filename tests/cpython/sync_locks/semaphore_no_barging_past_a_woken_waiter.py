# The Python twin of `semaphore_no_barging_past_a_woken_waiter` in
# tests/sync_locks.rs (gh-90155).

from prelude import *

async def main():
    sem = asyncio.Semaphore(1)
    order = []
    await sem.acquire()

    async def waiter():
        async with sem:
            order.append("waiter")
            await asyncio.sleep(1)

    t = asyncio.create_task(waiter())
    await asyncio.sleep(0)
    sem.release()
    log(f"released: value {sem._value}, locked {sem.locked()}")
    async with sem:
        order.append("main")
        log("main has a permit")
    await t
    log(f"value {sem._value}")
    return order

go(main)
