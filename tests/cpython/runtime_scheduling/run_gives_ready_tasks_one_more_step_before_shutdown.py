# The Python twin of `run_gives_ready_tasks_one_more_step_before_shutdown` in tests/runtime_scheduling.rs.

from prelude import *

async def spinner():
    for i in range(5):
        log(f"spin {i}")
        await asyncio.sleep(0)

async def fresh():
    log("fresh runs")
    await asyncio.sleep(1)
    log("fresh not reached")

async def main():
    asyncio.create_task(spinner())
    await asyncio.sleep(0)
    asyncio.create_task(fresh())
    log("main returns")
    return 1

go(main)
