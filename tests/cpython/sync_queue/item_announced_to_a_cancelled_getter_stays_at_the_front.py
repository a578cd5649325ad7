# The Python twin of `item_announced_to_a_cancelled_getter_stays_at_the_front` in tests/sync_queue.rs (B10.2).

from prelude import *

async def getter(q):
    try:
        await q.get()
    except asyncio.CancelledError as e:
        log(f"getter cancelled: {ex(e)}, qsize={q.qsize()}")
        raise

async def main():
    q = asyncio.Queue()
    g = asyncio.create_task(getter(q))
    await asyncio.sleep(1)
    q.put_nowait("x")  # wakes the getter ...
    g.cancel()         # ... which is cancelled before it runs
    q.put_nowait("y")
    await asyncio.gather(g, return_exceptions=True)
    log(f"then {q.get_nowait()}, {q.get_nowait()}")

go(main)
