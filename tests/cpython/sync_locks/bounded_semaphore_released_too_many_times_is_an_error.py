# The Python twin of `bounded_semaphore_released_too_many_times_is_an_error`
# in tests/sync_locks.rs (CPython's test_locks.py test_release_not_acquired).

from prelude import *

async def main():
    sem = asyncio.BoundedSemaphore(2)
    try:
        sem.release()
    except ValueError as e:
        log(f"ValueError: {e}")
    await sem.acquire()
    sem.release()
    log(f"acquired and released: value {sem._value}")
    try:
        sem.release()
    except ValueError as e:
        log(f"ValueError: {e}")
    log(f"value {sem._value}")
    plain = asyncio.Semaphore(2)
    plain.release()
    log(f"a plain semaphore goes above: value {plain._value}")

go(main)
