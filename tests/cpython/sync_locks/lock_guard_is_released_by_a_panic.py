# The Python twin of `lock_guard_is_released_by_a_panic` in
# tests/sync_locks.rs: the Rust task panics while it holds the guard; the
# nearest Python is an exception that nobody catches inside the task.

from prelude import *

async def main():
    lock = asyncio.Lock()

    async def crashes():
        async with lock:
            await asyncio.sleep(1)
            raise Boom("crash while holding the lock")

    async def next_one():
        async with lock:
            log("next_one has the lock")

    t1 = asyncio.create_task(crashes())
    t2 = asyncio.create_task(next_one())
    try:
        await t1
    except Boom as e:
        log(f"crashes failed: {e}")
    await t2
    log(f"locked {lock.locked()}")

go(main)
