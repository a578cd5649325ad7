# The Python twin of `as_completed_with_timeout` in tests/runtime_combinators.rs.

from prelude import *

async def job(name, d):
    await asyncio.sleep(d)
    log(f"{name} done")
    return name

async def main():
    tasks = [asyncio.create_task(job(n, d)) for n, d in [("a", 3), ("b", 1), ("c", 2)]]
    for f in asyncio.as_completed(tasks, timeout=1.5):
        try:
            log(f"got {await f}")
        except TimeoutError as e:
            log(f"got {ex(e)}")
    log(f"cancelled: {[t.cancelled() for t in tasks]}")
    await asyncio.sleep(5)
    return [t.done() for t in tasks]

go(main)
