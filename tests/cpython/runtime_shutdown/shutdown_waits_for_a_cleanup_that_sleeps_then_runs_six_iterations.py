# The Python twin of `shutdown_waits_for_a_cleanup_that_sleeps_then_runs_six_iterations`
# in tests/runtime_shutdown.rs.

from prelude import *

async def ticker():
    for i in range(10):
        log(f"tick {i}")
        await asyncio.sleep(0)

async def sleeper():
    try:
        await asyncio.sleep(10)
    except asyncio.CancelledError as e:
        log(f"sleeper: {ex(e)}")
        asyncio.get_running_loop().call_later(0, log, "zero-delay timer")
        await asyncio.sleep(2)
        log("sleeper slept 2 in its cleanup")
        asyncio.create_task(ticker())
        raise

async def main():
    asyncio.create_task(sleeper())
    await asyncio.sleep(1)
    log("main returns")
    return "main"

go(main)
