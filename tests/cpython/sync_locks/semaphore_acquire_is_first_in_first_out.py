# The Python twin of `semaphore_acquire_is_first_in_first_out` in
# tests/sync_locks.rs (CPython's test_locks.py test_acquire_fifo_order; gather
# instead of a TaskGroup).

from prelude import *

async def main():
    sem = asyncio.Semaphore(1)
    result = []

    async def coro(tag):
        await sem.acquire()
        result.append(f"{tag}_1")
        await asyncio.sleep(0.5)
        sem.release()
        await sem.acquire()
        result.append(f"{tag}_2")
        await asyncio.sleep(0.5)
        sem.release()

    await asyncio.gather(*(asyncio.create_task(coro(t)) for t in ("c1", "c2", "c3")))
    log(f"value {sem._value}")
    return result

go(main)
