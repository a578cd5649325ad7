# The Python twin of `wait_for_zero_timeout_never_starts_the_task` in tests/runtime_combinators.rs.

from prelude import *

async def body():
    log("body runs")
    return 1

async def main():
    try:
        await asyncio.wait_for(body(), 0)
    except TimeoutError as e:
        log(f"wait_for raised {ex(e)}")
    await asyncio.sleep(1)
    return 0

go(main)
