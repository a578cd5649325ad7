# The Python twin of `semaphore_waiter_cancelled_before_wake_up_gets_nothing`
# in tests/sync_locks.rs (CPython's test_locks.py test_acquire_fifo_order_3
# and test_acquire_cancel_before_awoken).

from prelude import *

async def main():
    sem = asyncio.Semaphore(0)
    result = []

    async def c(n):
        await sem.acquire()
        result.append(n)

    tasks = [asyncio.create_task(c(n)) for n in (1, 2, 3, 4)]
    await asyncio.sleep(0)
    tasks[0].cancel()
    await asyncio.sleep(0)
    log(f"c1 cancelled: locked {sem.locked()}, waiters {len(sem._waiters)}")
    tasks[1].cancel()
    sem.release()
    log(f"c2 cancelled, one release: value {sem._value}")
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    log(f"result {result}, done {[t.done() for t in tasks]}, value {sem._value}")
    tasks[3].cancel()
    outcomes = await asyncio.gather(*tasks, return_exceptions=True)
    log(f"outcomes {[ex(r) if isinstance(r, BaseException) else r for r in outcomes]}")
    return result

go(main)
