# The Python twin of `nowait_calls_never_wait` in tests/sync_queue.rs (B10.1).

from prelude import *

async def main():
    q = asyncio.Queue(2)
    log(f"maxsize={q.maxsize} qsize={q.qsize()} empty={q.empty()} full={q.full()}")
    try:
        q.get_nowait()
    except asyncio.QueueEmpty as e:
        log(f"get_nowait: {ex(e)}")
    q.put_nowait("a")
    q.put_nowait("b")
    log(f"qsize={q.qsize()} empty={q.empty()} full={q.full()}")
    try:
        q.put_nowait("c")
    except asyncio.QueueFull as e:
        log(f"put_nowait c: {ex(e)}")
    log(f"get_nowait -> {q.get_nowait()}")
    log(f"qsize={q.qsize()} full={q.full()}")
    u = asyncio.Queue()
    for i in range(100):
        u.put_nowait(i)
    log(f"unbounded: maxsize={u.maxsize} qsize={u.qsize()} full={u.full()}")

go(main)
