# The Python twin of `condition_wait_for_rechecks_the_predicate` in
# tests/sync_locks.rs (CPython's test_locks.py ConditionTests.test_wait_for).

from prelude import *

async def main():
    cond = asyncio.Condition()
    ready = False
    checks = 0

    def predicate():
        nonlocal checks
        checks += 1
        log(f"predicate check {checks}: {ready}")
        return ready

    async def c():
        async with cond:
            await cond.wait_for(predicate)
            log("c proceeds")

    t = asyncio.create_task(c())
    await asyncio.sleep(0)
    async with cond:
        cond.notify()
    await asyncio.sleep(0)
    log(f"notified while false: done {t.done()}")
    ready = True
    async with cond:
        cond.notify()
    await t
    log(f"checks {checks}, locked {cond.locked()}")

go(main)
