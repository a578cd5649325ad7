# The Python twin of `nested_run_is_an_error` in tests/runtime_scheduling.rs.

from prelude import *

async def inner():
    log("inner runs")

async def main():
    try:
        asyncio.run(inner())
    except RuntimeError as e:
        log(f"RuntimeError: {e}")
    await asyncio.sleep(1)
    return 1

go(main)
