# The Python twin of `condition_notify_wakes_the_first_n_in_order` in
# tests/sync_locks.rs (CPython's test_locks.py ConditionTests.test_notify and
# test_notify_all).

from prelude import *

async def main():
    cond = asyncio.Condition()
    result = []

    async def c(n):
        async with cond:
            await cond.wait()
            result.append(n)

    tasks = [asyncio.create_task(c(n)) for n in (1, 2, 3, 4, 5)]
    await asyncio.sleep(0)
    async with cond:
        cond.notify(1)
    await asyncio.sleep(0)
    log(f"notify(1): {result}")
    async with cond:
        cond.notify(1)
        cond.notify(2)
    await asyncio.sleep(0)
    log(f"notify(1), notify(2): {result}")
    async with cond:
        cond.notify_all()
    await asyncio.sleep(0)
    log(f"notify_all: {result}, waiters {len(cond._waiters)}")
    await asyncio.gather(*tasks)
    return result

go(main)
