# The Python twin of `join_returns_at_once_when_nothing_is_outstanding` in tests/sync_queue.rs (B10.1).

from prelude import *

async def other():
    log("other task runs")

async def main():
    q = asyncio.Queue()
    asyncio.create_task(other())
    await q.join()
    log("joined an empty queue")
    q.put_nowait("a")
    q.get_nowait()
    q.task_done()
    await q.join()
    log("joined again, all done")
    await asyncio.sleep(0)

go(main)
