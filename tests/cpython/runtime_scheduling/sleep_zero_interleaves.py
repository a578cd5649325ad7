# The Python twin of `sleep_zero_interleaves` in tests/runtime_scheduling.rs.

from prelude import *

async def worker(name):
    for i in (1, 2):
        log(f"{name}{i}")
        await asyncio.sleep(0)

async def main():
    a = asyncio.create_task(worker("a"))
    b = asyncio.create_task(worker("b"))
    await a
    await b

go(main)
