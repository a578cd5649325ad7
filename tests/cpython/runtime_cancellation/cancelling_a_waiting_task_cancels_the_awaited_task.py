# The Python twin of `cancelling_a_waiting_task_cancels_the_awaited_task` in tests/runtime_cancellation.rs.

from prelude import *

async def inner():
    try:
        await asyncio.sleep(10)
    except asyncio.CancelledError as e:
        log(f"inner caught {ex(e)}")
        await asyncio.sleep(1)
        log("inner cleanup done")
        raise

async def outer(i):
    try:
        await i
    except asyncio.CancelledError as e:
        log(f"outer caught {ex(e)}")
        raise

async def main():
    i = asyncio.create_task(inner())
    o = asyncio.create_task(outer(i))
    await asyncio.sleep(1)
    log(f"cancel outer -> {o.cancel('stop')}")
    log(f"inner cancelling={i.cancelling()} outer cancelling={o.cancelling()}")
    try:
        await o
    except asyncio.CancelledError as e:
        log(f"main caught {ex(e)}")
    return [i.cancelled(), o.cancelled()]

go(main)
