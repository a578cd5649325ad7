# The Python twin of `cancel_at_suspension_point_cleans_up_then_propagates` in tests/runtime_cancellation.rs.

from prelude import *

async def worker():
    log("worker starts")
    try:
        await asyncio.sleep(10)
        log("not reached")
    except asyncio.CancelledError as e:
        log(f"worker caught {ex(e)}")
        await asyncio.sleep(1)
        log("worker cleanup done")
        raise

async def main():
    t = asyncio.create_task(worker(), name="worker")
    await asyncio.sleep(1)
    log(f"cancel -> {t.cancel()}")
    log(f"cancelling={t.cancelling()} done={t.done()}")
    try:
        await t
    except asyncio.CancelledError as e:
        log(f"main caught {ex(e)}")
    log(f"cancelled={t.cancelled()} done={t.done()}")
    return asyncio.current_task().cancelling()

go(main)
