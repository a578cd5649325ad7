# The Python twin of `lock_is_free_for_a_newcomer_once_every_waiter_is_cancelled`
# in tests/sync_locks.rs.

from prelude import *

async def main():
    lock = asyncio.Lock()
    await lock.acquire()

    async def c():
        await lock.acquire()
        log("c acquired")

    t = asyncio.create_task(c())
    await asyncio.sleep(0)
    t.cancel()
    lock.release()
    await lock.acquire()
    log(f"main took it at once: waiters {len(lock._waiters)}, t done {t.done()}")
    await asyncio.sleep(0)
    log(f"t cancelled {t.cancelled()}, waiters {len(lock._waiters)}, locked {lock.locked()}")
    lock.release()

go(main)
