# The Python twin of `sleep_zero_loop_does_not_starve_timers` in tests/runtime_scheduling.rs.

from prelude import *

async def spinner():
    for i in range(4):
        log(f"spin {i}")
        await asyncio.sleep(0)

async def main():
    loop = asyncio.get_running_loop()
    t = asyncio.create_task(spinner())
    loop.call_later(0, lambda: log("timer"))
    await t
    log("main")

go(main)
