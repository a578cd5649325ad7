# The Python twin of `run_cancels_pending_tasks_at_end` in tests/runtime_scheduling.rs.

from prelude import *

async def lingering():
    log("lingering starts")
    try:
        await asyncio.sleep(10)
    except asyncio.CancelledError as e:
        log(f"lingering caught {ex(e)}")
        await asyncio.sleep(1)
        log("lingering cleanup done")
        raise

async def main():
    asyncio.create_task(lingering())
    await asyncio.sleep(0.5)
    log("main returns")
    return "done"

go(main)
print("run returned")
