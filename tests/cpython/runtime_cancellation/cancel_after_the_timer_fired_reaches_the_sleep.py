# The Python twin of `cancel_after_the_timer_fired_reaches_the_sleep` in tests/runtime_cancellation.rs.

from prelude import *

async def sleeper():
    try:
        await asyncio.sleep(1)
        log("sleeper woke normally")
    except asyncio.CancelledError as e:
        log(f"sleeper caught {ex(e)}")
        raise

async def main():
    loop = asyncio.get_running_loop()
    t = asyncio.create_task(sleeper())
    await asyncio.sleep(0)
    # due at the same time as the sleep, armed after it: runs after the
    # sleep completed, before the sleeper resumed
    loop.call_later(1, lambda: log(f"cancel -> {t.cancel()}"))
    try:
        await t
    except asyncio.CancelledError as e:
        log(f"main caught {ex(e)}")
    return t.cancelled()

go(main)
