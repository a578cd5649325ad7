# The Python twin of `as_completed_in_finishing_order` in tests/runtime_combinators.rs.

from prelude import *

async def job(name, d, fail=False):
    await asyncio.sleep(d)
    if fail:
        raise Boom(name)
    return name

async def main():
    done = asyncio.create_task(job("done", 0))
    await asyncio.sleep(0)
    tasks = [asyncio.create_task(job(n, d, f)) for n, d, f in
             [("a", 3, False), ("b", 1, False), ("c", 2, True)]]
    for f in asyncio.as_completed(tasks + [done]):
        try:
            log(f"got {await f}")
        except Boom as e:
            log(f"got {ex(e)}")
    return 0

go(main)
