# The Python twin of `wait_for_returns_in_time` in tests/runtime_combinators.rs.

from prelude import *

async def job(d, v):
    await asyncio.sleep(d)
    log(f"job returns {v}")
    return v

async def main():
    t = asyncio.create_task(job(1, 5))
    log(f"wait_for -> {await asyncio.wait_for(t, 2)}")
    u = asyncio.create_task(job(1, 6))
    log(f"wait_for None -> {await asyncio.wait_for(u, None)}")
    await asyncio.sleep(2)  # the timer of the first wait_for was cancelled
    f = asyncio.create_task(job(0.5, 0))
    await f
    log(f"wait_for done task, 0 -> {await asyncio.wait_for(f, 0)}")
    return 0

go(main)
