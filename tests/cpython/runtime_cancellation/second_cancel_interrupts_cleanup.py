# The Python twin of `second_cancel_interrupts_cleanup` in tests/runtime_cancellation.rs.

from prelude import *

async def worker():
    try:
        await asyncio.sleep(10)
    except asyncio.CancelledError as e:
        log(f"worker caught {ex(e)}, cleaning up for 5")
        try:
            await asyncio.sleep(5)
        except asyncio.CancelledError as e2:
            log(f"cleanup interrupted by {ex(e2)}")
        raise

async def main():
    t = asyncio.create_task(worker())
    await asyncio.sleep(1)
    t.cancel("first")
    await asyncio.sleep(1)
    t.cancel("second")
    try:
        await t
    except asyncio.CancelledError as e:
        log(f"main caught {ex(e)}")
    return t.cancelling()

go(main)
