# The Python twin of `cancelled_getter_passes_its_wake_up_on` in tests/sync_queue.rs (B10.2, test_get_cancelled_race).

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
    await asyncio.sleep(1)
    q.put_nowait("x")  # wakes g1 ...
    g1.cancel()        # ... which is cancelled in the same iteration
    await asyncio.gather(g1, g2, return_exceptions=True)
    log(f"qsize={q.qsize()} g1 cancelled={g1.cancelled()}")

go(main)
