# The Python twin of `waiting_getters_are_woken_in_the_order_they_came` in tests/sync_queue.rs (B10.2).

from prelude import *

async def getter(q, name):
    log(f"{name} waits")
    log(f"{name} got {await q.get()}")

async def main():
    q = asyncio.Queue()
    tasks = [asyncio.create_task(getter(q, f"g{n}")) for n in (1, 2, 3)]
    await asyncio.sleep(1)
    for item in ["x", "y", "z"]:
        q.put_nowait(item)
    await asyncio.gather(*tasks)

go(main)
