# The Python twin of `lock_acquire_is_first_in_first_out` in tests/sync_locks.rs
# (CPython's test_locks.py LockTests.test_acquire).

from prelude import *

async def main():
    lock = asyncio.Lock()
    result = []
    await lock.acquire()

    async def c(n):
        await lock.acquire()
        result.append(n)
        log(f"c{n} acquired")

    t1 = asyncio.create_task(c(1))
    t2 = asyncio.create_task(c(2))
    await asyncio.sleep(0)
    log(f"started: {result}")
    lock.release()
    await asyncio.sleep(0)
    log(f"after release 1: {result}")
    await asyncio.sleep(0)
    log(f"one step more: {result}")
    t3 = asyncio.create_task(c(3))
    lock.release()
    await asyncio.sleep(0)
    log(f"after release 2: {result}")
    lock.release()
    await asyncio.sleep(0)
    log(f"after release 3: {result}")
    log(f"done: {t1.done()} {t2.done()} {t3.done()}, locked: {lock.locked()}")
    return len(result)

go(main)
