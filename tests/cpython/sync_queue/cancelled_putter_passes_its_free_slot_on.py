# The Python twin of `cancelled_putter_passes_its_free_slot_on` in tests/sync_queue.rs (B10.2, test_put_cancelled_race).

from prelude import *

async def putter(q, name, item):
    try:
        await q.put(item)
    except asyncio.CancelledError as e:
        log(f"{name} cancelled: {ex(e)}, still holds {item}")
        raise
    log(f"{name} put {item}")

async def main():
    q = asyncio.Queue(1)
    q.put_nowait("a")
    p1 = asyncio.create_task(putter(q, "p1", "b"))
    p2 = asyncio.create_task(putter(q, "p2", "c"))
    await asyncio.sleep(1)
    log(f"main takes {q.get_nowait()}")  # frees the slot for p1 ...
    p1.cancel()                          # ... which is cancelled in the same iteration
    await asyncio.gather(p1, p2, return_exceptions=True)
    log(f"qsize={q.qsize()} next={q.get_nowait()}")

go(main)
