# The Python twin of `cancel_of_finished_task_returns_false` in tests/runtime_cancellation.rs.

from prelude import *

async def quick():
    return 1

async def slow():
    try:
        await asyncio.sleep(5)
    except asyncio.CancelledError as e:
        log(f"slow caught {ex(e)}")
        raise

async def main():
    t = asyncio.create_task(quick())
    await t
    log(f"cancel finished -> {t.cancel()} cancelled={t.cancelled()} cancelling={t.cancelling()}")
    u = asyncio.create_task(slow())
    await asyncio.sleep(1)
    log(f"cancel -> {u.cancel()}, again -> {u.cancel()}, cancelling={u.cancelling()}")
    try:
        await u
    except asyncio.CancelledError as e:
        log(f"main caught {ex(e)}")
    log(f"cancel cancelled -> {u.cancel()}")
    return u.cancelled()

go(main)
