# The Python twin of `cancelling_and_uncancel_counts` in tests/runtime_cancellation.rs.

from prelude import *

async def worker():
    me = asyncio.current_task()
    try:
        await asyncio.sleep(10)
    except asyncio.CancelledError as e:
        log(f"worker caught {ex(e)}, cancelling={me.cancelling()}")
        log(f"uncancel -> {me.uncancel()}")
        log(f"uncancel -> {me.uncancel()}")
        log(f"uncancel -> {me.uncancel()}")
    await asyncio.sleep(1)
    log(f"worker goes on, cancelling={me.cancelling()}")
    return "survived"

async def main():
    t = asyncio.create_task(worker())
    log(f"before: cancelling={t.cancelling()}")
    await asyncio.sleep(1)
    t.cancel()
    t.cancel()
    log(f"after two cancels: cancelling={t.cancelling()}")
    v = await t
    log(f"{v}: cancelled={t.cancelled()} cancelling={t.cancelling()}")
    return v

go(main)
