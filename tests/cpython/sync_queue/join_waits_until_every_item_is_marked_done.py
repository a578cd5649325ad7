# The Python twin of `join_waits_until_every_item_is_marked_done` in tests/sync_queue.rs (B10.1).

from prelude import *

async def worker(q, name):
    while True:
        secs = await q.get()
        log(f"{name} takes {secs}")
        await asyncio.sleep(secs)
        log(f"{name} done with {secs}")
        q.task_done()

async def watcher(q):
    await q.join()
    log("watcher: joined")

async def main():
    q = asyncio.Queue()
    for secs in [3, 1, 2]:
        q.put_nowait(secs)
    workers = [asyncio.create_task(worker(q, f"w{n}")) for n in (1, 2)]
    asyncio.create_task(watcher(q))
    await q.join()
    log("main: joined")
    for w in workers:
        w.cancel()
    await asyncio.gather(*workers, return_exceptions=True)

go(main)
