# The Python twin of `cancel_during_sleep_zero` in tests/runtime_cancellation.rs.

from prelude import *

async def yielder():
    log("yielder yields")
    try:
        await asyncio.sleep(0)
        log("not reached")
    except asyncio.CancelledError as e:
        log(f"yielder caught {ex(e)}")
        raise

async def main():
    t = asyncio.create_task(yielder())
    await asyncio.sleep(0)
    log(f"cancel -> {t.cancel()}")
    try:
        await t
    except asyncio.CancelledError as e:
        log(f"main caught {ex(e)}")
    return t.cancelled()

go(main)
