# The Python twin of `cancel_with_message` in tests/runtime_cancellation.rs.

from prelude import *

async def worker():
    try:
        await asyncio.sleep(10)
    except asyncio.CancelledError as e:
        log(f"worker caught {ex(e)}")
        raise

async def main():
    t = asyncio.create_task(worker())
    await asyncio.sleep(1)
    t.cancel("stop it")
    try:
        await t
    except asyncio.CancelledError as e:
        log(f"main caught {ex(e)}")
    return t.cancelled()

go(main)
