# The Python twin of `cancel_at_end_still_cancels` in tests/runtime_cancellation.rs.

from prelude import *

async def worker():
    await asyncio.sleep(1)
    asyncio.current_task().cancel()
    log("worker returns 12 with a cancel pending")
    return 12

async def main():
    t = asyncio.create_task(worker())
    try:
        log(f"await -> {await t}")
    except asyncio.CancelledError as e:
        log(f"main caught {ex(e)}")
    return t.cancelled()

go(main)
