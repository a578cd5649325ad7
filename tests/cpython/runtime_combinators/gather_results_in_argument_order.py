# The Python twin of `gather_results_in_argument_order` in tests/runtime_combinators.rs.

from prelude import *

async def job(name, d):
    await asyncio.sleep(d)
    log(f"{name} done")
    return name

async def main():
    tasks = [asyncio.create_task(job(n, d)) for n, d in [("a", 3), ("b", 1), ("c", 2)]]
    r = await asyncio.gather(*tasks)
    log(f"gather -> {r}")
    started = []
    async def mark():
        started.append(1)
    m = asyncio.create_task(mark())
    r = await asyncio.gather()
    log(f"empty gather -> {r}, without yielding: {not started}")
    await m
    return len(r)

go(main)
