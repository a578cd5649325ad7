# The Python twin of `awaited_task_suppressing_the_cancel_returns_to_the_waiter` in tests/runtime_cancellation.rs.

from prelude import *

async def inner():
    try:
        await asyncio.sleep(10)
    except asyncio.CancelledError:
        log("inner suppresses")
    await asyncio.sleep(1)
    return "inner value"

async def outer(i):
    v = await i
    log(f"outer got {v}")
    await asyncio.sleep(1)
    log("outer goes on")
    return v

async def main():
    i = asyncio.create_task(inner())
    o = asyncio.create_task(outer(i))
    await asyncio.sleep(1)
    o.cancel()
    v = await o
    log(f"outer returned {v}, cancelled={o.cancelled()} cancelling={o.cancelling()}")
    return v

go(main)
