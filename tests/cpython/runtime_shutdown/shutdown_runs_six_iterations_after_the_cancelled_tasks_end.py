# The Python twin of `shutdown_runs_six_iterations_after_the_cancelled_tasks_end`
# in tests/runtime_shutdown.rs.

from prelude import *

async def ticker():
    for i in range(10):
        print(f"tick {i}")
        await asyncio.sleep(0)

async def sleeper():
    try:
        await asyncio.sleep(10)
    except asyncio.CancelledError:
        asyncio.create_task(ticker())
        raise

async def main():
    asyncio.create_task(sleeper())
    await asyncio.sleep(0)

asyncio.run(main())
