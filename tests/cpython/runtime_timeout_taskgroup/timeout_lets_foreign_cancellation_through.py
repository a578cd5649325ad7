# The Python twin of `timeout_lets_foreign_cancellation_through` in tests/runtime_timeout_taskgroup.rs.

from prelude import *

async def worker(d):
    try:
        async with asyncio.timeout(d) as cm:
            await asyncio.sleep(20)
    except asyncio.CancelledError as e:
        log(f"worker: {ex(e)} passed through, expired={cm.expired()}")
        raise
    except TimeoutError:
        log("worker: TimeoutError")

async def main():
    loop = asyncio.get_running_loop()
    t = asyncio.create_task(worker(10))
    await asyncio.sleep(1)
    t.cancel("outside")
    try:
        await t
    except asyncio.CancelledError as e:
        log(f"main caught {ex(e)}, cancelled={t.cancelled()}")
    # the deadline and an outside cancel in the same iteration: a cancellation
    u = asyncio.create_task(worker(1))
    await asyncio.sleep(0)
    loop.call_later(1, u.cancel)
    try:
        await u
    except asyncio.CancelledError as e:
        log(f"main caught {ex(e)}, cancelled={u.cancelled()}")
    return 0

go(main)
