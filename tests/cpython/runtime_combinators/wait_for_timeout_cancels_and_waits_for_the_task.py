# The Python twin of `wait_for_timeout_cancels_and_waits_for_the_task` in tests/runtime_combinators.rs.

from prelude import *

async def slow():
    try:
        await asyncio.sleep(10)
    except asyncio.CancelledError as e:
        log(f"slow caught {ex(e)}, cleaning up")
        await asyncio.sleep(1)
        log("slow cleanup done")
        raise

async def main():
    t = asyncio.create_task(slow())
    try:
        await asyncio.wait_for(t, 2)
    except TimeoutError as e:
        log(f"wait_for raised {ex(e)}")
    log(f"slow cancelled={t.cancelled()}")
    me = asyncio.current_task()
    return me.cancelling()

go(main)
