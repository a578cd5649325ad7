# The Python twin of `getters_drain_the_items_left_after_shutdown` in tests/sync_queue.rs (B10.4).
#
# PYTHON 3.13: on 3.11 this runs with the shutdown rules of
# shutdown_wakes_waiting_getters_with_queue_shut_down.py (see there).

from prelude import *
from shutdown_wakes_waiting_getters_with_queue_shut_down import Queue, QueueShutDown

async def putter(q, item):
    try:
        await q.put(item)
    except QueueShutDown as e:
        log(f"putter: {ex(e)}, still holds {item}")

async def consumer(q):
    while True:
        try:
            item = await q.get()
        except QueueShutDown as e:
            log(f"consumer: {ex(e)}")
            return
        log(f"consumer got {item}")
        q.task_done()
        await asyncio.sleep(1)

async def main():
    q = Queue(2)
    q.put_nowait("a")
    q.put_nowait("b")
    p = asyncio.create_task(putter(q, "c"))
    await asyncio.sleep(1)
    q.shutdown()
    log(f"shut down with qsize={q.qsize()}")
    await p
    c = asyncio.create_task(consumer(q))
    await q.join()
    log("joined")
    await c

go(main)
