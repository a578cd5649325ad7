# The Python twin of `lock_release_when_unlocked_is_an_error` in
# tests/sync_locks.rs (CPython's test_locks.py test_release_not_acquired).

from prelude import *

async def main():
    lock = asyncio.Lock()
    try:
        lock.release()
    except RuntimeError as e:
        log(f"RuntimeError: {e}")
    async with lock:
        log(f"inside: locked {lock.locked()}")
    log(f"after: locked {lock.locked()}")
    try:
        lock.release()
    except RuntimeError as e:
        log(f"RuntimeError: {e}")

go(main)
