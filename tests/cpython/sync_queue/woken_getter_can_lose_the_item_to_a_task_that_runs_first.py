# The Python twin of `woken_getter_can_lose_the_item_to_a_task_that_runs_first` in tests/sync_queue.rs (B10.2).

from prelude import *

async def getter(q, name):
    log(f"{name} got {await q.get()}")

async def main():
    q = asyncio.Queue()
    g1 = asyncio.create_task(getter(q, "g1"))
    g2 = asyncio.create_task(getter(q, "g2"))
    await asyncio.sleep(1)
    q.put_nowait("x")  # wakes g1
    log(f"main takes {q.get_nowait()}")
    q.put_nowait("y")  # wakes g2, but g1 runs first and takes y
    await asyncio.sleep(1)
    log(f"qsize={q.qsize()} g1 done={g1.done()} g2 done={g2.done()}")
    q.put_nowait("z")
    await g2

go(main)
