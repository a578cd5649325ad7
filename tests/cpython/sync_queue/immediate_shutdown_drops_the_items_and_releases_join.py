# The Python twin of `immediate_shutdown_drops_the_items_and_releases_join` in tests/sync_queue.rs (B10.4).
#
# PYTHON 3.13: on 3.11 this runs with the shutdown rules of
# shutdown_wakes_waiting_getters_with_queue_shut_down.py (see there).

from prelude import *
from shutdown_wakes_waiting_getters_with_queue_shut_down import Queue, QueueShutDown

async def joiner(q):
    await q.join()
    log("joiner: joined")

async def main():
    q = Queue()
    for item in ["a", "b", "c"]:
        q.put_nowait(item)
    log(f"main got {q.get_nowait()}")
    j = asyncio.create_task(joiner(q))
    await asyncio.sleep(1)
    dropped = q.qsize()
    q.shutdown(immediate=True)
    log(f"dropped {dropped}, qsize={q.qsize()}")
    try:
        await q.get()
    except QueueShutDown as e:
        log(f"get: {ex(e)}")
    await asyncio.sleep(1)
    log(f"joiner done={j.done()}")
    q.task_done()
    await j

go(main)
