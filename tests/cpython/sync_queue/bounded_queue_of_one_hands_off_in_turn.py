# The Python twin of `bounded_queue_of_one_hands_off_in_turn` in tests/sync_queue.rs (B10.2).

from prelude import *

async def producer(q, name, items):
    for item in items:
        log(f"{name} puts {item}")
        await q.put(item)
        log(f"{name} put {item}")

async def consumer(q, n):
    for _ in range(n):
        await asyncio.sleep(1)
        log(f"got {await q.get()}")

async def main():
    q = asyncio.Queue(1)
    await asyncio.gather(
        producer(q, "p1", ["a1", "a2"]),
        producer(q, "p2", ["b1", "b2"]),
        consumer(q, 4),
    )
    log(f"qsize={q.qsize()}")

go(main)
