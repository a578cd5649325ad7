# The Python twin of `cancelled_getter_that_was_not_woken_steals_nothing` in tests/sync_queue.rs (B10.2).

from prelude import *

async def getter(q, name):
    try:
        item = await q.get()
    except asyncio.CancelledError as e:
        log(f"{name} cancelled: {ex(e)}")
        raise
    log(f"{name} got {item}")

async def main():
    q = asyncio.Queue()
    g1 = asyncio.create_task(getter(q, "g1"))
    g2 = asyncio.create_task(getter(q, "g2"))
    g3 = asyncio.create_task(getter(q, "g3"))
    await asyncio.sleep(1)
    g1.cancel()
    await asyncio.sleep(1)
    q.put_nowait("x")
    q.put_nowait("y")
    await asyncio.gather(g1, g2, g3, return_exceptions=True)
    log(f"qsize={q.qsize()}")

go(main)
