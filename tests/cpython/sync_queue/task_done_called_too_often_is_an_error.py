# The Python twin of `task_done_called_too_often_is_an_error` in tests/sync_queue.rs (B10.1).

from prelude import *

async def main():
    q = asyncio.Queue()
    try:
        q.task_done()
    except ValueError as e:
        log(f"fresh queue: {ex(e)}")
    q.put_nowait("a")
    log(f"got {q.get_nowait()}")
    q.task_done()
    log("one task_done per item is fine")
    try:
        q.task_done()
    except ValueError as e:
        log(f"one more: {ex(e)}")

go(main)
