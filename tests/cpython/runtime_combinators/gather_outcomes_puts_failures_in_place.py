# The Python twin of `gather_outcomes_puts_failures_in_place` in tests/runtime_combinators.rs.

from prelude import *

async def job(name, d, fail=False):
    try:
        await asyncio.sleep(d)
    except asyncio.CancelledError:
        log(f"{name} cancelled")
        raise
    if fail:
        log(f"{name} fails")
        raise Boom(name)
    log(f"{name} done")
    return name

async def main():
    a = asyncio.create_task(job("a", 3))
    b = asyncio.create_task(job("b", 1, fail=True))
    c = asyncio.create_task(job("c", 5))
    asyncio.get_running_loop().call_later(2, c.cancel)
    r = await asyncio.gather(a, b, c, return_exceptions=True)
    log("gather -> [" + ", ".join(py(x) if isinstance(x, str) else ex(x) for x in r) + "]")

go(main)
