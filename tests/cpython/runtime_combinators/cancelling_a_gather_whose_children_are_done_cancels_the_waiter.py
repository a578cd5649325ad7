# The Python twin of `cancelling_a_gather_whose_children_are_done_cancels_the_waiter` in tests/runtime_combinators.rs.

from prelude import *

async def job():
    await asyncio.sleep(1)
    log("job done")
    return 1

async def main():
    a = asyncio.create_task(job())
    g = None
    def cancel_g(_):
        log(f"cancel -> {g.cancel()}")
    a.add_done_callback(cancel_g)  # runs before gather's own callback
    async def gatherer():
        try:
            r = await asyncio.gather(a)
            log(f"gather -> {r}")
        except asyncio.CancelledError as e:
            log(f"gatherer caught {ex(e)}")
            raise
    g = asyncio.create_task(gatherer())
    try:
        await g
    except asyncio.CancelledError as e:
        log(f"main caught {ex(e)}")
    return [a.cancelled(), g.cancelled()]

go(main)
