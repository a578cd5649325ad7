# The Python twin of `cancelled_joiner_leaves_the_other_joiners_waiting` in tests/sync_queue.rs (B10.1).

from prelude import *

async def joiner(q, name):
    try:
        await q.join()
    except asyncio.CancelledError as e:
        log(f"{name} cancelled: {ex(e)}")
        raise
    log(f"{name} joined")

async def main():
    q = asyncio.Queue()
    q.put_nowait("a")
    j1 = asyncio.create_task(joiner(q, "j1"))
    j2 = asyncio.create_task(joiner(q, "j2"))
    await asyncio.sleep(1)
    j1.cancel()
    await asyncio.sleep(1)
    log(f"main got {q.get_nowait()}")
    q.task_done()
    await asyncio.gather(j1, j2, return_exceptions=True)

go(main)
