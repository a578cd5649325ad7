# The Python twin of `run_returns_main_error` in tests/runtime_scheduling.rs.

from prelude import *

async def main():
    await asyncio.sleep(1)
    log("main raises")
    raise Boom("bad")

go(main)
