# The Python twin of `lifo_queue_hands_out_the_newest_first` in tests/sync_queue.rs (B10.3).

from prelude import *

async def getter(q):
    log(f"getter got {await q.get()}")

async def main():
    q = asyncio.LifoQueue()
    for item in [1, 2, 3, 4]:
        q.put_nowait(item)
    log(f"got {[q.get_nowait() for _ in range(3)]}")
    q.put_nowait(5)
    log(f"got {q.get_nowait()} then {q.get_nowait()}")
    g = asyncio.create_task(getter(q))
    await asyncio.sleep(1)
    q.put_nowait(6)
    q.put_nowait(7)
    await g
    log(f"left {q.get_nowait()}")

go(main)
