# The Python twin of `condition_wait_takes_the_lock_again_when_cancelled` in
# tests/sync_locks.rs (CPython's test_locks.py test_wait_cancel_contested and
# test_wait_cancel_after_notify).

from prelude import *

async def main():
    cond = asyncio.Condition()

    async def w():
        async with cond:
            try:
                await cond.wait()
            except asyncio.CancelledError as e:
                log(f"w: {ex(e)} with the lock held: {cond.locked()}")
                raise

    t = asyncio.create_task(w())
    await asyncio.sleep(0)
    await cond.acquire()
    cond.notify()
    t.cancel()
    await asyncio.sleep(0)
    log(f"notified and cancelled w while holding the lock: w done {t.done()}")
    await asyncio.sleep(1)
    log(f"still held: w done {t.done()}")
    cond.release()
    try:
        await t
    except asyncio.CancelledError:
        log(f"w cancelled {t.cancelled()}, locked {cond.locked()}")

go(main)
