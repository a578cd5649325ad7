# The Python twin of `run_returns_main_value` in tests/runtime_scheduling.rs.

from prelude import *

async def main():
    await asyncio.sleep(1.5)
    log("main returns")
    return 42

go(main)
