# The Python twin of `get_with_waiting_putters` in tests/sync_queue.rs (B10.2, test_get_with_waiting_putters).

from prelude import *

async def putter(q, item):
    log(f"putter puts {item}")
    await q.put(item)
    log(f"putter put {item}")

async def main():
    q = asyncio.Queue(1)
    q.put_nowait("a")
    p = asyncio.create_task(putter(q, "b"))
    await asyncio.sleep(0)
    log(f"main got {await q.get()}")
    log(f"main got {await q.get()}")
    await p
    log(f"qsize={q.qsize()}")

go(main)
