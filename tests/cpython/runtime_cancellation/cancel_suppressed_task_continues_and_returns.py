# The Python twin of `cancel_suppressed_task_continues_and_returns` in tests/runtime_cancellation.rs.

from prelude import *

async def worker():
    try:
        await asyncio.sleep(10)
    except asyncio.CancelledError as e:
        log(f"worker suppresses {ex(e)}")
    await asyncio.sleep(1)
    log("worker goes on")
    return 7

async def main():
    t = asyncio.create_task(worker())
    await asyncio.sleep(1)
    t.cancel()
    v = await t
    log(f"worker returned {v}, cancelled={t.cancelled()} cancelling={t.cancelling()}")
    return v

go(main)
