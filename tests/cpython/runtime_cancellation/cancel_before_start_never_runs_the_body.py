# The Python twin of `cancel_before_start_never_runs_the_body` in tests/runtime_cancellation.rs.

from prelude import *

async def body():
    log("body runs")
    return 1

async def main():
    t = asyncio.create_task(body())
    log(f"cancel -> {t.cancel('early')}")
    try:
        await t
    except asyncio.CancelledError as e:
        log(f"main caught {ex(e)}")
    log(f"cancelled={t.cancelled()}")
    await asyncio.sleep(1)
    return 0

go(main)
