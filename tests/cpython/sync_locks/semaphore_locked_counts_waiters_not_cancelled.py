# The Python twin of `semaphore_locked_counts_waiters_not_cancelled` in
# tests/sync_locks.rs (CPython's test_locks.py SemaphoreTests.test_acquire).

from prelude import *

async def main():
    sem = asyncio.Semaphore(3)
    result = []
    await sem.acquire()
    await sem.acquire()
    log(f"two taken: value {sem._value}, locked {sem.locked()}")

    async def c(n):
        await sem.acquire()
        result.append(n)

    tasks = [asyncio.create_task(c(n)) for n in (1, 2, 3)]
    await asyncio.sleep(0)
    log(f"{result}: value {sem._value}, locked {sem.locked()}, waiters {len(sem._waiters)}")
    tasks.append(asyncio.create_task(c(4)))
    sem.release()
    sem.release()
    log(f"two releases: value {sem._value}")
    await asyncio.sleep(0)
    log(f"{result}: value {sem._value}, locked {sem.locked()}, waiters {len(sem._waiters)}")
    tasks[3].cancel()
    await asyncio.sleep(0)
    log(f"c4 cancelled: locked {sem.locked()}, waiters {len(sem._waiters)}")
    sem.release()
    log(f"released: locked {sem.locked()}, value {sem._value}")
    await sem.acquire()
    log(f"main took a permit at once: value {sem._value}")
    return result

go(main)
