# The Python twin of `semaphore_woken_waiter_does_not_lose_its_turn_to_a_releaser`
# in tests/sync_locks.rs (CPython's test_locks.py test_acquire_fifo_order_2).

from prelude import *

async def main():
    sem = asyncio.Semaphore(1)
    result = []

    async def c1():
        await sem.acquire()
        result.append(1)

    async def c2():
        await sem.acquire()
        result.append(2)
        sem.release()
        await sem.acquire()
        result.append(4)

    async def c3():
        await sem.acquire()
        result.append(3)

    tasks = [asyncio.create_task(c()) for c in (c1, c2, c3)]
    await asyncio.sleep(0)
    sem.release()
    sem.release()
    await asyncio.gather(*tasks)
    log(f"value {sem._value}, locked {sem.locked()}")
    return result

go(main)
