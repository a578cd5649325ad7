# The Python twin of `condition_notified_waiters_proceed_one_by_one_with_the_lock`
# in tests/sync_locks.rs (CPython's test_locks.py ConditionTests.test_wait).

from prelude import *

async def main():
    cond = asyncio.Condition()
    result = []

    async def c(n):
        await cond.acquire()
        await cond.wait()
        result.append(n)

    tasks = [asyncio.create_task(c(n)) for n in (1, 2, 3)]
    await asyncio.sleep(0)
    log(f"waiting: {result}, locked {cond.locked()}")
    await cond.acquire()
    cond.notify(1)
    await asyncio.sleep(0)
    log(f"notified 1, lock still held: {result}, locked {cond.locked()}")
    cond.release()
    await asyncio.sleep(0)
    log(f"released: {result}, locked {cond.locked()}")
    cond.notify(2)
    await asyncio.sleep(0)
    log(f"notified 2 more: {result}, locked {cond.locked()}")
    cond.release()
    await asyncio.sleep(0)
    log(f"released: {result}, locked {cond.locked()}")
    cond.release()
    await asyncio.sleep(0)
    log(f"released: {result}, locked {cond.locked()}")
    log(f"done: {[t.done() for t in tasks]}")
    return result

go(main)
