# The Python twin of `cancelled_gather_whose_children_suppress_still_raises` in tests/runtime_combinators.rs.

from prelude import *

async def stubborn(name):
    try:
        await asyncio.sleep(10)
    except asyncio.CancelledError:
        log(f"{name} suppresses")
    await asyncio.sleep(1)
    return name

async def gatherer(tasks):
    try:
        r = await asyncio.gather(*tasks)
        log(f"gather -> {r}")
    except asyncio.CancelledError as e:
        log(f"gather raised {ex(e)}")
        raise

async def main():
    a = asyncio.create_task(stubborn("a"))
    b = asyncio.create_task(stubborn("b"))
    g = asyncio.create_task(gatherer([a, b]))
    await asyncio.sleep(1)
    g.cancel()
    try:
        await g
    except asyncio.CancelledError as e:
        log(f"main caught {ex(e)}")
    log(f"a -> {await a}, b -> {await b}, g cancelled={g.cancelled()}")

go(main)
