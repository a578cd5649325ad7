# The Python twin of `equal_deadlines_fire_first_in_first_out` in tests/runtime_scheduling.rs.

from prelude import *

async def sleeper(i, d):
    await asyncio.sleep(d)
    log(f"task {i} woke")

async def main():
    loop = asyncio.get_running_loop()
    tasks = [asyncio.create_task(sleeper(i, 1)) for i in range(5)]
    for i in range(3):
        loop.call_later(2, log, f"callback {i}")
    tasks += [asyncio.create_task(sleeper(i, d)) for i, d in [(5, 3), (6, 0.5), (7, 2)]]
    for t in tasks:
        await t
    log("main")

go(main)
