# The Python twin of `cancelling_the_gather_cancels_every_child` in tests/runtime_combinators.rs.

from prelude import *

async def job(name, d, cleanup):
    try:
        await asyncio.sleep(d)
    except asyncio.CancelledError as e:
        log(f"{name} caught {ex(e)}")
        await asyncio.sleep(cleanup)
        log(f"{name} cleanup done")
        raise
    log(f"{name} done")
    return name

async def gatherer(tasks, return_exceptions):
    try:
        r = await asyncio.gather(*tasks, return_exceptions=return_exceptions)
        log(f"gather -> {r}")
    except asyncio.CancelledError as e:
        log(f"gather raised {ex(e)}")
        raise

async def scenario(return_exceptions):
    log(f"return_exceptions={return_exceptions}")
    done = asyncio.create_task(job("x", 0.5, 0))
    a = asyncio.create_task(job("a", 10, 1))
    b = asyncio.create_task(job("b", 10, 2))
    g = asyncio.create_task(gatherer([done, a, b], return_exceptions))
    await asyncio.sleep(1)
    log(f"cancel -> {g.cancel('stop')}")
    try:
        await g
    except asyncio.CancelledError as e:
        log(f"main caught {ex(e)}")
    await asyncio.sleep(5)
    log(f"cancelled: x={done.cancelled()} a={a.cancelled()} b={b.cancelled()} g={g.cancelled()}")

async def main():
    await scenario(False)
    await scenario(True)

go(main)
