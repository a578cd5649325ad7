# The Python twin of
# `condition_notified_waiter_cancelled_before_it_runs_loses_the_notification`
# in tests/sync_locks.rs: CPython 3.11 does not pass the notification on
# (3.13 does).

from prelude import *

async def main():
    cond = asyncio.Condition()

    async def w(name):
        async with cond:
            await cond.wait()
            log(f"{name} notified")

    t1 = asyncio.create_task(w("t1"))
    t2 = asyncio.create_task(w("t2"))
    await asyncio.sleep(0)
    async with cond:
        cond.notify(1)
        t1.cancel()
    await asyncio.sleep(1)
    log(f"t1 cancelled {t1.cancelled()}, t2 done {t2.done()}, waiters {len(cond._waiters)}")
    async with cond:
        cond.notify(1)
    await t2

go(main)
