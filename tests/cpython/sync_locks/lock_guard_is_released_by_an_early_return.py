# The Python twin of `lock_guard_is_released_by_an_early_return` in
# tests/sync_locks.rs: an exception leaves `async with lock` (in Rust, `?`
# returns while the guard is alive).

from prelude import *

async def main():
    lock = asyncio.Lock()

    async def critical():
        async with lock:
            log(f"critical: locked {lock.locked()}")
            raise Boom("failed inside")

    async def next_one():
        async with lock:
            log("next_one has the lock")

    t1 = asyncio.create_task(critical())
    t2 = asyncio.create_task(next_one())
    outcomes = await asyncio.gather(t1, t2, return_exceptions=True)
    log(f"outcomes {[ex(r) if isinstance(r, BaseException) else r for r in outcomes]}")
    log(f"locked {lock.locked()}")

go(main)
