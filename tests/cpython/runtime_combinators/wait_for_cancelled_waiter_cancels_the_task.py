# The Python twin of `wait_for_cancelled_waiter_cancels_the_task` in tests/runtime_combinators.rs.

from prelude import *

async def slow():
    try:
        await asyncio.sleep(10)
    except asyncio.CancelledError as e:
        log(f"slow caught {ex(e)}")
        await asyncio.sleep(1)
        log("slow cleanup done")
        raise

async def waiter(t):
    try:
        return await asyncio.wait_for(t, 5)
    except asyncio.CancelledError as e:
        log(f"wait_for raised {ex(e)}")
        raise

async def main():
    t = asyncio.create_task(slow())
    w = asyncio.create_task(waiter(t))
    await asyncio.sleep(1)
    w.cancel("stop")
    try:
        await w
    except asyncio.CancelledError as e:
        log(f"main caught {ex(e)}")
    log(f"slow cancelled={t.cancelled()} waiter cancelled={w.cancelled()}")
    await asyncio.sleep(10)
    return 0

go(main)
