# The Python twin of `self_cancel_arrives_at_the_next_wait` in tests/runtime_cancellation.rs.

from prelude import *

async def worker():
    log(f"self-cancel -> {asyncio.current_task().cancel()}")
    log("still running until the next await")
    try:
        await asyncio.sleep(5)
    except asyncio.CancelledError as e:
        log(f"caught {ex(e)} at the await")
        raise

async def main():
    t = asyncio.create_task(worker())
    try:
        await t
    except asyncio.CancelledError as e:
        log(f"main caught {ex(e)}")
    return t.cancelled()

go(main)
