# The Python twin of `priority_queue_hands_out_the_smallest_first_and_equals_in_insertion_order`
# in tests/sync_queue.rs (B10.3).
#
# gencoro's PriorityQueue keeps equal items in insertion order. CPython's
# heap does not promise that, so the Python program does what Python programs
# do for it: it adds a counter to each entry, `(priority, seq, name)`. The
# Rust test's jobs compare by priority alone.

from prelude import *
import itertools

seq = itertools.count()

async def main():
    q = asyncio.PriorityQueue()
    for prio, name in [(3, "c1"), (1, "a1"), (2, "b1"), (1, "a2"), (3, "c2"), (1, "a3"), (2, "b2")]:
        q.put_nowait((prio, next(seq), name))
    order = []
    while not q.empty():
        prio, _, name = q.get_nowait()
        order.append(f"{prio}:{name}")
    log(" ".join(order))

go(main)
