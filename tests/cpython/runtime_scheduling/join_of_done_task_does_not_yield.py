# The Python twin of `join_of_done_task_does_not_yield` in tests/runtime_scheduling.rs.

from prelude import *

started = []

async def value():
    return 5

async def mark():
    started.append(1)
    log("u runs")

async def main():
    t = asyncio.create_task(value())
    await asyncio.sleep(0)
    log(f"t done: {t.done()}")
    u = asyncio.create_task(mark())
    v = await t
    log(f"awaited t -> {v}, u started: {bool(started)}")
    await asyncio.sleep(0)
    log(f"after sleep(0), u started: {bool(started)}")

go(main)
